"""What people do in Tryton, done over JSON-RPC for the tests: receive stock, sell at the till,
move a complaint on. A separate session from the connector's, like a second user."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from connectors.tryton.rpc import TrytonClient
from sandbox.tryton.server import TrytonServer


class Erp:
    def __init__(self, server: TrytonServer) -> None:
        self.server = server
        self.ids = server.ids
        self.rpc = TrytonClient(server.base_url, server.database, server.login, server.password)

    def close(self) -> None:
        self.rpc.close()

    def product(self, code: str) -> int:
        return int(self.ids["products"][code])

    def add_product(self, code: str, name: str, list_price: Decimal) -> int:
        """A goods product (one variant) in the category the master data's products are in (23 % VAT,
        revenue and expense accounts), as a clerk would add one to the catalogue."""
        (category,) = self.rpc.search_read("product.category", [["name", "=", "Towary"]], ["id"])
        (template,) = self.rpc.model(
            "product.template",
            "create",
            [
                {
                    "name": name,
                    "code": code,
                    "type": "goods",
                    "salable": True,
                    "default_uom": self.ids["unit"],
                    "sale_uom": self.ids["unit"],
                    "list_price": list_price,
                    "account_category": category["id"],
                    "products": [["create", [{}]]],
                }
            ],
        )
        (product,) = self.rpc.search_read("product.product", [["template", "=", template]], ["id"])
        self.ids["products"][code] = int(product["id"])
        return int(product["id"])

    def add_party(
        self, name: str, *, email: str | None = None, mobile: str | None = None, address: dict[str, str] | None = None
    ) -> int:
        """A customer as the till keys one in: a name, the phone as the customer says it, maybe an email."""
        mechanisms = [{"type": t, "value": v} for t, v in (("email", email), ("mobile", mobile)) if v]
        vals: dict[str, Any] = {"name": name, "contact_mechanisms": [["create", mechanisms]]}
        if address:
            vals["addresses"] = [["create", [address]]]
        (party,) = self.rpc.model("party.party", "create", [vals])
        return int(party)

    def receive(self, code: str, quantity: float) -> int:
        """A done stock move from the supplier into the warehouse's storage (a goods receipt)."""
        (move,) = self.rpc.model(
            "stock.move",
            "create",
            [
                {
                    "product": self.product(code),
                    "from_location": self.ids["supplier"],
                    "to_location": self.ids["storage"],
                    "quantity": quantity,
                    "unit": self.ids["unit"],
                    "unit_price": Decimal("10"),
                    "currency": self.ids["currency"],
                }
            ],
        )
        self.rpc.model("stock.move", "do", [move])
        return int(move)

    def quantity(self, code: str) -> float:
        (row,) = self.rpc.search_read(
            "product.product",
            [["id", "=", self.product(code)]],
            ["quantity"],
            context={"locations": [self.ids["warehouse"]]},
        )
        return float(row["quantity"])

    def pos_sale(self, party: int | None, lines: list[tuple[str, float, str]], *, post: bool = False) -> int:
        """A ticket at the till, paid by card and completed (state done). Prices are gross (with VAT)
        as the till shows them; the net list price is given too, since an RPC create does not run
        the client's on_change (docs: the on_change trap). Stock leaves the store only when the
        ticket is posted (``post``: what closing the till's session does), not when it is done."""
        vals: dict[str, Any] = {
            "point": self.ids["sale_point"],
            "lines": [
                [
                    "create",
                    [
                        {
                            "product": self.product(code),
                            "quantity": qty,
                            "unit_gross_price": Decimal(gross),
                            "unit_list_price": (Decimal(gross) / Decimal("1.23")).quantize(Decimal("0.0001")),
                        }
                        for code, qty, gross in lines
                    ],
                ]
            ],
        }
        if party is not None:
            vals["party"] = party
        (sale,) = self.rpc.model("sale.point.sale", "create", [vals])
        (row,) = self.rpc.model("sale.point.sale", "read", [sale], ["total"])
        self.rpc.model(
            "sale.point.sale",
            "write",
            [sale],
            {"payments": [["create", [{"method": self.ids["payment_method"], "amount": row["total"]}]]]},
        )
        self.rpc.model("sale.point.sale", "process", [sale])
        if post:
            self.rpc.model("sale.point.sale", "post", [sale])
        return int(sale)

    def read(self, model: str, rid: int, fields: list[str]) -> dict[str, Any]:
        (row,) = self.rpc.model(model, "read", [rid], fields)
        return dict(row)

    def search(self, model: str, domain: list[Any], fields: list[str]) -> list[dict[str, Any]]:
        return self.rpc.search_read(model, domain, fields, context={"active_test": False})

    def button(self, model: str, name: str, rid: int) -> None:
        self.rpc.model(model, name, [rid])
