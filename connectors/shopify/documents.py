"""Every GraphQL document the Shopify connector sends, in one place so a test can validate them all
against Shopify's published Admin API schema of the pinned version (tests/shopify/test_schema.py).

The selections are the record shapes mappings/shopify.yaml reads: a connection is read as
``{nodes: [...]}``. Bulk queries repeat the same selections with ``edges { node }`` (the shape the
bulk-operation guide documents), built from the same strings so the two cannot drift.
https://shopify.dev/docs/api/usage/bulk-operations/queries
"""

from __future__ import annotations

ADDRESS = "firstName lastName company address1 address2 zip city countryCodeV2 phone"
MONEY = "shopMoney { amount currencyCode }"

CUSTOMER = f"""
    id firstName lastName locale note tags createdAt updatedAt
    defaultEmailAddress {{ emailAddress marketingState marketingOptInLevel marketingUpdatedAt }}
    defaultPhoneNumber {{ phoneNumber smsMarketingConsent {{ state updatedAt }} }}
    defaultAddress {{ id {ADDRESS} }}
    loyaltyId: metafield(namespace: "loyalty", key: "id") {{ value }}
    synchubId: metafield(namespace: "synchub", key: "id") {{ value }}
"""

LINE_ITEM = f"""
    id sku name quantity
    originalUnitPriceSet {{ {MONEY} }}
    totalDiscountSet {{ {MONEY} }}
    discountedTotalSet {{ {MONEY} }}
"""

FULFILLMENT_ORDER = "id status deliveryMethod { methodType }"

ORDER_SCALARS = f"""
    id name email phone sourceName displayFulfillmentStatus displayFinancialStatus currencyCode
    customer {{ id }}
    subtotalPriceSet {{ {MONEY} }}
    totalShippingPriceSet {{ {MONEY} }}
    totalTaxSet {{ {MONEY} }}
    totalDiscountsSet {{ {MONEY} }}
    totalPriceSet {{ {MONEY} }}
    shippingLine {{ title code source deliveryCategory originalPriceSet {{ {MONEY} }} }}
    customAttributes {{ key value }}
    shippingAddress {{ {ADDRESS} }}
    billingAddress {{ {ADDRESS} }}
    fulfillments {{ id status createdAt updatedAt trackingInfo {{ number company url }} }}
    tags note processedAt updatedAt
"""

ORDER = f"""
    {ORDER_SCALARS}
    lineItems(first: 25) {{ nodes {{ {LINE_ITEM} }} }}
    fulfillmentOrders(first: 5) {{ nodes {{ {FULFILLMENT_ORDER} }} }}
"""

PRODUCT = """
    id title handle status updatedAt
    variants(first: 100) { nodes { id sku title price updatedAt inventoryItem { id } } }
"""

INVENTORY_ITEM = """
    id sku updatedAt
    inventoryLevels(first: 50) {
      nodes { id updatedAt location { id name } quantities(names: ["available", "on_hand"]) { name quantity } }
    }
"""

PAGE = "pageInfo { hasNextPage endCursor }"

# --- incremental reads: updated_at:>=T, oldest first ---------------------------------------------

CUSTOMERS = f"""
query SynchubCustomers($first: Int!, $after: String, $query: String) {{
  customers(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {{
    {PAGE}
    nodes {{ {CUSTOMER} }}
  }}
}}
"""

ORDERS = f"""
query SynchubOrders($first: Int!, $after: String, $query: String) {{
  orders(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {{
    {PAGE}
    nodes {{ {ORDER} }}
  }}
}}
"""

PRODUCTS = f"""
query SynchubProducts($first: Int!, $after: String, $query: String) {{
  products(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {{
    {PAGE}
    nodes {{ {PRODUCT} }}
  }}
}}
"""

# inventoryItems has no sort key: the connector reads a whole pass (id order) before moving T
INVENTORY_ITEMS = f"""
query SynchubInventoryItems($first: Int!, $after: String, $query: String) {{
  inventoryItems(first: $first, after: $after, query: $query) {{
    {PAGE}
    nodes {{ {INVENTORY_ITEM} }}
  }}
}}
"""

# page sizes that keep one call under the 1,000-point query limit (nested connections multiply)
PAGE_SIZES = {"customer": 100, "order": 4, "product": 4, "stock_level": 6}

READS = {"customer": CUSTOMERS, "order": ORDERS, "product": PRODUCTS, "stock_level": INVENTORY_ITEMS}
ROOT_FIELDS = {"customer": "customers", "order": "orders", "product": "products", "stock_level": "inventoryItems"}

NODES = f"""
query SynchubNodes($ids: [ID!]!) {{
  nodes(ids: $ids) {{
    __typename
    ... on Customer {{ {CUSTOMER} }}
    ... on Order {{ {ORDER} }}
    ... on Product {{ {PRODUCT} }}
    ... on InventoryItem {{ {INVENTORY_ITEM} }}
  }}
}}
"""

# --- lookups for writes --------------------------------------------------------------------------

CUSTOMER_BY_ID = f"""
query SynchubCustomerByIdentifier($identifier: CustomerIdentifierInput!) {{
  customerByIdentifier(identifier: $identifier) {{ {CUSTOMER} }}
}}
"""

LOCATIONS = """
query SynchubLocations($first: Int!, $after: String) {
  locations(first: $first, after: $after) { pageInfo { hasNextPage endCursor } nodes { id name } }
}
"""

ITEMS_BY_SKU = """
query SynchubItemsBySku($first: Int!, $query: String!) {
  inventoryItems(first: $first, query: $query) {
    nodes { id sku inventoryLevels(first: 20) { nodes { id location { id } } } }
  }
}
"""

ORDER_FULFILMENT_STATE = f"""
query SynchubOrderFulfilment($id: ID!) {{
  order(id: $id) {{
    id
    fulfillments {{ id status trackingInfo {{ number company url }} }}
    fulfillmentOrders(first: 10) {{ nodes {{ {FULFILLMENT_ORDER} }} }}
  }}
}}
"""

# --- writes --------------------------------------------------------------------------------------

ERRORS = "userErrors { field message }"

CUSTOMER_CREATE = f"""
mutation SynchubCustomerCreate($input: CustomerInput!) {{
  customerCreate(input: $input) {{ customer {{ {CUSTOMER} }} {ERRORS} }}
}}
"""

CUSTOMER_UPDATE = f"""
mutation SynchubCustomerUpdate($input: CustomerInput!) {{
  customerUpdate(input: $input) {{ customer {{ {CUSTOMER} }} {ERRORS} }}
}}
"""

ADDRESS_CREATE = f"""
mutation SynchubAddressCreate($customerId: ID!, $address: MailingAddressInput!) {{
  customerAddressCreate(customerId: $customerId, address: $address, setAsDefault: true) {{ address {{ id }} {ERRORS} }}
}}
"""

ADDRESS_UPDATE = f"""
mutation SynchubAddressUpdate($customerId: ID!, $addressId: ID!, $address: MailingAddressInput!) {{
  customerAddressUpdate(customerId: $customerId, addressId: $addressId, address: $address, setAsDefault: true) {{
    address {{ id }} {ERRORS}
  }}
}}
"""

EMAIL_CONSENT = """
mutation SynchubEmailConsent($input: CustomerEmailMarketingConsentUpdateInput!) {
  customerEmailMarketingConsentUpdate(input: $input) {
    customer { id updatedAt }
    userErrors { field message code }
  }
}
"""

ORDER_UPDATE = f"""
mutation SynchubOrderUpdate($input: OrderInput!) {{
  orderUpdate(input: $input) {{ order {{ id tags note updatedAt }} {ERRORS} }}
}}
"""

FULFILMENT_CREATE = f"""
mutation SynchubFulfillmentCreate($fulfillment: FulfillmentInput!) {{
  fulfillmentCreate(fulfillment: $fulfillment) {{
    fulfillment {{ id status updatedAt trackingInfo {{ number company url }} }}
    {ERRORS}
  }}
}}
"""

# As of 2026-04 the idempotency key is required on this mutation (see its description in the schema).
INVENTORY_SET = """
mutation SynchubInventorySet($input: InventorySetQuantitiesInput!, $key: String!) {
  inventorySetQuantities(input: $input) @idempotent(key: $key) {
    inventoryAdjustmentGroup { id }
    userErrors { field message code }
  }
}
"""

WEBHOOK_CREATE = """
mutation SynchubWebhookCreate($topic: WebhookSubscriptionTopic!, $sub: WebhookSubscriptionInput!) {
  webhookSubscriptionCreate(topic: $topic, webhookSubscription: $sub) {
    webhookSubscription { id topic uri }
    userErrors { field message }
  }
}
"""

# --- bulk operations -----------------------------------------------------------------------------

BULK_RUN = """
mutation SynchubBulkRun($query: String!) {
  bulkOperationRunQuery(query: $query, groupObjects: true) {
    bulkOperation { id status createdAt }
    userErrors { field message code }
  }
}
"""

BULK_POLL = """
query SynchubBulkPoll($id: ID!) {
  node(id: $id) {
    ... on BulkOperation { id status errorCode objectCount rootObjectCount url partialDataUrl createdAt completedAt }
  }
}
"""

BULK_CURRENT = """
query SynchubBulkCurrent {
  currentBulkOperation(type: QUERY) { id status errorCode objectCount url createdAt completedAt }
}
"""

# Bulk queries: nested connections come back as their own JSONL lines carrying ``__parentId``.
BULK_QUERIES = {
    "customer": f"{{ customers {{ edges {{ node {{ {CUSTOMER} }} }} }} }}",
    "order": (
        f"{{ orders {{ edges {{ node {{ {ORDER_SCALARS}"
        f" lineItems {{ edges {{ node {{ {LINE_ITEM} }} }} }}"
        f" fulfillmentOrders {{ edges {{ node {{ {FULFILLMENT_ORDER} }} }} }}"
        " } } } }"
    ),
    "product": (
        "{ products { edges { node { id title handle status updatedAt"
        " variants { edges { node { id sku title price updatedAt inventoryItem { id } } } } } } } }"
    ),
}
# which connection a child line belongs to, by the type in its global id
BULK_CHILDREN = {"LineItem": "lineItems", "FulfillmentOrder": "fulfillmentOrders", "ProductVariant": "variants"}

ALL: dict[str, str] = {
    "CUSTOMERS": CUSTOMERS,
    "ORDERS": ORDERS,
    "PRODUCTS": PRODUCTS,
    "INVENTORY_ITEMS": INVENTORY_ITEMS,
    "NODES": NODES,
    "CUSTOMER_BY_ID": CUSTOMER_BY_ID,
    "LOCATIONS": LOCATIONS,
    "ITEMS_BY_SKU": ITEMS_BY_SKU,
    "ORDER_FULFILMENT_STATE": ORDER_FULFILMENT_STATE,
    "CUSTOMER_CREATE": CUSTOMER_CREATE,
    "CUSTOMER_UPDATE": CUSTOMER_UPDATE,
    "ADDRESS_CREATE": ADDRESS_CREATE,
    "ADDRESS_UPDATE": ADDRESS_UPDATE,
    "EMAIL_CONSENT": EMAIL_CONSENT,
    "ORDER_UPDATE": ORDER_UPDATE,
    "FULFILMENT_CREATE": FULFILMENT_CREATE,
    "INVENTORY_SET": INVENTORY_SET,
    "WEBHOOK_CREATE": WEBHOOK_CREATE,
    "BULK_RUN": BULK_RUN,
    "BULK_POLL": BULK_POLL,
    "BULK_CURRENT": BULK_CURRENT,
    **{f"BULK_QUERY_{k.upper()}": v for k, v in BULK_QUERIES.items()},
}
"""Every document by name: the schema test validates each one."""
