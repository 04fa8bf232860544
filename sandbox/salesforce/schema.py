"""The emulated org's metadata: the objects and fields the shipped mapping uses, as Setup would
have them after an admin followed docs/salesforce-setup.md.

Each field is ``name: "type[:length] [flags]"`` with flags ``req`` (required on create), ``ro`` (not
createable or updateable), ``ext`` (external id, unique), ``uniq``, ``ref=Object``, ``default``
(defaulted on create). ``describe`` answers from this table in the shape of the REST API's
sObject Describe resource:
https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_sobject_describe.htm
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class FieldDef:
    name: str
    type: str
    length: int = 0
    required: bool = False
    readonly: bool = False
    external_id: bool = False
    unique: bool = False
    reference_to: str | None = None
    defaulted: bool = False

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.name.removesuffix("__c").replace("_", " "),
            "type": self.type,
            "length": self.length,
            "createable": not self.readonly,
            "updateable": not self.readonly and self.name != "Id",
            "nillable": not self.required and self.type != "boolean",
            "defaultedOnCreate": self.defaulted or self.readonly,
            "externalId": self.external_id,
            "unique": self.unique,
            "idLookup": self.external_id or self.name == "Id",
            "referenceTo": [self.reference_to] if self.reference_to else [],
            "custom": self.name.endswith("__c"),
        }


@dataclass
class ObjectDef:
    name: str
    key_prefix: str
    fields: dict[str, FieldDef]
    children: dict[str, tuple[str, str]] = field(default_factory=dict)  # relationship → (child object, fk field)

    def types(self) -> dict[str, str]:
        return {n: f.type for n, f in self.fields.items()}

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.name.removesuffix("__c"),
            "keyPrefix": self.key_prefix,
            "custom": self.name.endswith("__c"),
            "createable": True,
            "updateable": True,
            "deletable": True,
            "queryable": True,
            "fields": [f.describe() for f in self.fields.values()],
            "childRelationships": [
                {"childSObject": obj, "field": fk, "relationshipName": rel} for rel, (obj, fk) in self.children.items()
            ],
        }


def _field(name: str, spec: str) -> FieldDef:
    kind, *flags = spec.split()
    ftype, _, length = kind.partition(":")
    ref = next((f.split("=", 1)[1] for f in flags if f.startswith("ref=")), None)
    return FieldDef(
        name,
        ftype,
        int(length or 0),
        required="req" in flags,
        readonly="ro" in flags,
        external_id="ext" in flags,
        unique="ext" in flags or "uniq" in flags,
        reference_to=ref,
        defaulted="default" in flags,
    )


SYSTEM_FIELDS = {
    "Id": "id:18 ro",
    "IsDeleted": "boolean ro",
    "CreatedDate": "datetime ro",
    "LastModifiedDate": "datetime ro",
    "SystemModstamp": "datetime ro",
}
EXTERNAL_ID = {"Synchub_Id__c": "string:36 ext"}
MAILING = {f"Mailing{p}": f"string:{n}" for p, n in (("Street", 255), ("PostalCode", 20), ("City", 40), ("State", 80))}

OBJECTS: dict[str, tuple[str, dict[str, str]]] = {
    "Account": (
        "001",
        {"Name": "string:255 req", "Phone": "phone:40", "Description": "textarea:32000", **EXTERNAL_ID},
    ),
    "Contact": (
        "003",
        {
            "FirstName": "string:40",
            "LastName": "string:80 req",
            "Email": "email:80",
            "Phone": "phone:40",
            "MobilePhone": "phone:40",
            **MAILING,
            "MailingCountryCode": "picklist:10",
            "HasOptedOutOfEmail": "boolean",
            "DoNotCall": "boolean",
            "Birthdate": "date",
            "Description": "textarea:32000",
            "AccountId": "reference:18 ref=Account",
            "Loyalty_Id__c": "string:32 uniq",
            "Email_Consent_At__c": "datetime",
            "Email_Consent_Source__c": "string:80",
            "Channels__c": "multipicklist:4099",
            **EXTERNAL_ID,
        },
    ),
    "Order": (
        "801",
        {
            "AccountId": "reference:18 req ref=Account",
            "BillToContactId": "reference:18 ref=Contact",
            "EffectiveDate": "date req",
            "Status": "picklist:40 req default",
            "TotalAmount": "currency ro",
            "CurrencyIsoCode": "picklist:3",  # multi-currency orgs only (docs/salesforce-setup.md)
            "Description": "textarea:32000",
            **{
                f"{k}{p}": f"string:{n}"
                for k in ("Shipping", "Billing")
                for p, n in (("Street", 255), ("PostalCode", 20), ("City", 40))
            },
            "ShippingCountryCode": "picklist:10",
            "BillingCountryCode": "picklist:10",
            "Channel_Order_Number__c": "string:40",
            "Channel__c": "picklist:40",
            "Source_System__c": "string:40",
            "Payment_Status__c": "picklist:40",
            "Shipping_Total__c": "currency",
            "Grand_Total__c": "currency",
            "Delivery_Method__c": "picklist:40",
            "Carrier__c": "string:40",
            "Locker_Point__c": "string:20",
            "Pickup_Store__c": "string:40",
            "Placed_At__c": "datetime",
            "Pricebook2Id": "reference:18 ref=Pricebook2",
            **EXTERNAL_ID,
        },
    ),
    # Order products: https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_orderitem.htm
    # (OrderId and PricebookEntryId are set on create only; Product2Id follows from the entry)
    "OrderItem": (
        "802",
        {
            "OrderId": "reference:18 req ref=Order",
            "PricebookEntryId": "reference:18 req ref=PricebookEntry",
            "Product2Id": "reference:18 ro ref=Product2",
            "Quantity": "double req",
            "UnitPrice": "currency req",
            "TotalPrice": "currency ro",
            "Description": "string:255",
            "Sku__c": "string:64",
            "Synchub_Id__c": "string:48 ext",  # "<order's canonical id>:<line no>"
        },
    ),
    # https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_pricebook2.htm
    "Pricebook2": ("01s", {"Name": "string:255 req", "IsActive": "boolean", "IsStandard": "boolean ro"}),
    # https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_pricebookentry.htm
    "PricebookEntry": (
        "01u",
        {
            "Pricebook2Id": "reference:18 req ref=Pricebook2",
            "Product2Id": "reference:18 req ref=Product2",
            "UnitPrice": "currency req",
            "IsActive": "boolean",
            "ProductCode": "string:255 ro",
        },
    ),
    "Product2": (
        "01t",
        {
            "Name": "string:255 req",
            "ProductCode": "string:255",
            "Description": "textarea:4000",
            "IsActive": "boolean",
            "Ean__c": "string:14",
            "Price__c": "currency",
            **EXTERNAL_ID,
        },
    ),
    "Case": (
        "500",
        {
            "Subject": "string:255",
            "Description": "textarea:32000",
            "Status": "picklist:40 default",
            "Priority": "picklist:40 default",
            "Origin": "picklist:40",
            "Type": "picklist:40",
            "ContactId": "reference:18 ref=Contact",
            "Order__c": "reference:18 ref=Order",
            "Resolution__c": "textarea:32768",
            "Refund_Amount__c": "currency",
            **EXTERNAL_ID,
        },
    ),
    "Shipment__c": (
        "a0S",
        {
            "Name": "string:80 ro",
            "Order__c": "reference:18 ref=Order",
            "Carrier__c": "string:40",
            "Service__c": "string:60",
            "Locker_Point__c": "string:20",
            "Tracking_Number__c": "string:40",
            "Tracking_Url__c": "url:255",
            "Status__c": "picklist:40",
            "Receiver_Email__c": "email:80",
            "Receiver_Phone__c": "phone:40",
            **EXTERNAL_ID,
        },
    ),
    "Task": (
        "00T",
        {
            "WhoId": "reference:18 ref=Contact",
            "Subject": "string:255",
            "ActivityDate": "date",
            "Status": "picklist:40 req default",
            "Channel__c": "picklist:40",
            "Touchpoint_Kind__c": "string:40",
            "Occurred_At__c": "datetime",
            "Source_System__c": "string:40",
            "Source_Reference__c": "string:80",
            **EXTERNAL_ID,
        },
    ),
}
CHILDREN = {"Order": {"OrderItems": ("OrderItem", "OrderId")}}
DEFAULTS = {
    ("Order", "Status"): "Draft",
    ("Case", "Status"): "New",
    ("Case", "Priority"): "Medium",
    ("Task", "Status"): "Not Started",
}

PERSON_ACCOUNT_FIELDS = {
    "FirstName": "string:40",
    "LastName": "string:80",
    "PersonEmail": "email:80",
    "PersonMobilePhone": "phone:40",
    **{f"Person{k}": v for k, v in MAILING.items()},
    "PersonMailingCountryCode": "picklist:10",
    "PersonHasOptedOutOfEmail": "boolean",
    "PersonDoNotCall": "boolean",
    "PersonBirthdate": "date",
    "IsPersonAccount": "boolean ro",
    "RecordTypeId": "reference:18",
    "Loyalty_Id__pc": "string:32 uniq",
    "Email_Consent_At__pc": "datetime",
    "Email_Consent_Source__pc": "string:80",
    "Channels__pc": "multipicklist:4099",
}


def default_schema(*, person_accounts: bool = False) -> dict[str, ObjectDef]:
    """A fresh copy of the org's metadata; tests may delete or change fields on their copy."""
    out: dict[str, ObjectDef] = {}
    for name, (prefix, fields) in OBJECTS.items():
        specs = {**SYSTEM_FIELDS, **fields}
        if name == "Account" and person_accounts:
            specs = {**specs, **PERSON_ACCOUNT_FIELDS}
            specs["Name"] = "string:255"  # a person account's Name is compound from First/LastName
        out[name] = ObjectDef(name, prefix, {n: _field(n, s) for n, s in specs.items()}, dict(CHILDREN.get(name, {})))
    return out
