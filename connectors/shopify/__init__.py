"""Shopify (Admin GraphQL API): registered as kind ``shopify``."""

from connectors.shopify.connector import ShopifyConnector
from core.connector import register_connector

register_connector(ShopifyConnector)

__all__ = ["ShopifyConnector"]
