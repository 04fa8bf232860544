"""synchub_pos: the customer of a POS ticket, so a store purchase joins the customer's history.

Tryton's sale_point tickets are anonymous (https://docs.tryton.org/modules-sale-point/design.html:
sale.point.sale has no party). A shop that identifies its customers at the till (a loyalty card, a
phone number) needs somewhere to keep that: this module adds one optional field, ``party``, to
``sale.point.sale``. It is a Tryton server module (copied into ``trytond/modules/``), not synchub
code; the connector reads the field when the server has it and treats tickets as anonymous when not.
"""

from trytond.pool import Pool

from . import sale


def register():
    Pool.register(sale.POSSale, module="synchub_pos", type_="model")
