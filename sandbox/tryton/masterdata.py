"""Master data a sale, a POS ticket and a complaint need, built once into the template database.

Run by the Tryton venv's python (not the project's): ``python masterdata.py <config> <database>``.
It uses proteus in-process, with the helpers Tryton's own module scenarios use
(trytond.modules.*.tests.tools), so the data is what Tryton itself considers valid. Prints the ids
the tests need as one JSON object on the last line.
"""

import datetime as dt
import json
import sys
from decimal import Decimal

from proteus import Model
from proteus import config as pconfig

CONFIG, DATABASE = sys.argv[1], sys.argv[2]
pconfig.set_trytond(DATABASE, config_file=CONFIG)

from trytond.modules.account.tests.tools import (  # noqa: E402
    create_chart,
    create_fiscalyear,
    create_tax,
    get_accounts,
)
from trytond.modules.account_invoice.tests.tools import (  # noqa: E402
    create_payment_term,
    set_fiscalyear_invoice_sequences,
)
from trytond.modules.company.tests.tools import create_company, get_company  # noqa: E402
from trytond.modules.currency.tests.tools import get_currency  # noqa: E402

# Countries: a real server loads them with trytond_import_countries (pycountry); these do here.
Country = Model.get("country.country")
for code, name in [("PL", "Poland"), ("DE", "Germany"), ("CZ", "Czechia"), ("LT", "Lithuania")]:
    Country(name=name, code=code).save()

currency = get_currency("PLN")
create_company(currency=currency)
company = get_company()
create_chart(company)
today = dt.date.today()
for year in (today.year, today.year + 1):  # a test run around New Year still finds its fiscal year
    fiscalyear = set_fiscalyear_invoice_sequences(create_fiscalyear(company, today=dt.date(year, 6, 1)))
    fiscalyear.click("create_period")
accounts = get_accounts(company)

tax = create_tax(Decimal("0.23"), company)
tax.save()

ProductCategory = Model.get("product.category")
category = ProductCategory(name="Towary")
category.accounting = True
category.account_revenue = accounts["revenue"]
category.account_expense = accounts["expense"]
category.customer_taxes.append(tax)
category.save()

Uom = Model.get("product.uom")
(unit,) = Uom.find([("name", "=", "Unit")])
Template = Model.get("product.template")
products = {}
for code, name, price in [
    ("KUBEK-01", "Kubek ceramiczny", "24.39"),
    ("KOC-02", "Koc wełniany", "162.60"),
    ("HERB-03", "Herbata liściasta", "15.45"),
]:
    template = Template(name=name, default_uom=unit, type="goods", salable=True, account_category=category)
    template.list_price = Decimal(price)
    template.code = code
    template.save()
    (product,) = template.products
    products[code] = product.id

Location = Model.get("stock.location")
(warehouse,) = Location.find([("type", "=", "warehouse")])
# the warehouse as the shops know it (mappings/shopify.yaml maps "Magazyn Kraków" to WH-KRK)
warehouse.code = "WH-KRK"
warehouse.name = "Magazyn Kraków"
warehouse.save()
(storage,) = Location.find([("code", "=", "STO")])
(supplier,) = Location.find([("code", "=", "SUP")])
(customer_loc,) = Location.find([("code", "=", "CUS")])

# Opening stock: one done move per product from the supplier into the warehouse's storage.
Move = Model.get("stock.move")
for pid in products.values():
    move = Move(product=pid, from_location=supplier, to_location=storage, quantity=10, unit=unit)
    move.unit_price = Decimal("10")
    move.currency = currency
    move.save()
    move.click("do")

Journal = Model.get("account.journal")
(journal_revenue,) = Journal.find([("type", "=", "revenue")], limit=1)
SequenceStrict = Model.get("ir.sequence.strict")
SequenceType = Model.get("ir.sequence.type")
POS = Model.get("sale.point")
pos = POS(name="Sklep Kraków Rynek")
pos.journal = journal_revenue
pos.sequence = SequenceStrict(name="POS Kraków", company=pos.company)
(pos.sequence.sequence_type,) = SequenceType.find([("name", "=", "POS")], limit=1)
pos.sequence.save()
pos.storage_location = storage
pos.customer_location = customer_loc
pos.save()

PaymentMethod = Model.get("sale.point.payment.method")
card = PaymentMethod(name="Karta")
card.account = accounts["cash"]
card.save()

IrModel = Model.get("ir.model")
ComplaintType = Model.get("sale.complaint.type")
complaint_type = ComplaintType(name="Reklamacja")
(complaint_type.origin,) = IrModel.find([("name", "=", "sale.sale")])
complaint_type.save()

payment_term = create_payment_term()
payment_term.save()

print(
    json.dumps(
        {
            "company": company.id,
            "currency": currency.id,
            "warehouse": warehouse.id,
            "storage": storage.id,
            "supplier": supplier.id,
            "products": products,
            "unit": unit.id,
            "sale_point": pos.id,
            "payment_method": card.id,
            "complaint_type": complaint_type.id,
            "payment_term": payment_term.id,
        }
    )
)
