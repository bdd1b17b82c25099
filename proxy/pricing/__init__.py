"""Prices and costs: which table applies, the estimate before a call, the actual
cost after it — exact, in Decimal, each line traceable to its table."""

from .catalog import CATALOG_TABLE
from .cost import Cost, CostLine, usd
from .pricer import Priced, Pricer, TargetEstimate

__all__ = ["CATALOG_TABLE", "Cost", "CostLine", "Priced", "Pricer", "TargetEstimate", "usd"]
