"""sale.point.sale gains ``party``: who bought, when the till knew it."""

from trytond.model import fields
from trytond.pool import PoolMeta


class POSSale(metaclass=PoolMeta):
    __name__ = "sale.point.sale"
    party = fields.Many2One("party.party", "Customer", ondelete="RESTRICT")
