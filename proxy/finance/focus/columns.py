"""The columns of a FOCUS export, in the order written.

FOCUS 1.2's cost-and-usage columns come first, every one of them, null where Tollgate
has nothing to say (regions, commitments, capacity reservations), so a finance team
loads the file into the same table as its cloud bills. Then the older names that
1.2 renamed or respelled but the FinOps Foundation's own validator (focus-validator
1.0.0, rules for FOCUS 1.0) still reads: additive columns are allowed, so the file
passes both. Then Tollgate's own fields, `x_`-prefixed as the spec's extension rules
require.
"""

from __future__ import annotations

FOCUS_1_2 = (
    "AvailabilityZone",
    "BilledCost",
    "BillingAccountId",
    "BillingAccountName",
    "BillingAccountType",
    "BillingCurrency",
    "BillingPeriodEnd",
    "BillingPeriodStart",
    "CapacityReservationId",
    "CapacityReservationStatus",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargeFrequency",
    "ChargePeriodEnd",
    "ChargePeriodStart",
    "CommitmentDiscountCategory",
    "CommitmentDiscountId",
    "CommitmentDiscountName",
    "CommitmentDiscountQuantity",
    "CommitmentDiscountStatus",
    "CommitmentDiscountType",
    "CommitmentDiscountUnit",
    "ConsumedQuantity",
    "ConsumedUnit",
    "ContractedCost",
    "ContractedUnitPrice",
    "EffectiveCost",
    "InvoiceId",
    "InvoiceIssuerName",
    "ListCost",
    "ListUnitPrice",
    "PricingCategory",
    "PricingCurrency",
    "PricingCurrencyContractedUnitPrice",
    "PricingCurrencyEffectiveCost",
    "PricingCurrencyListUnitPrice",
    "PricingQuantity",
    "PricingUnit",
    "ProviderName",
    "PublisherName",
    "RegionId",
    "RegionName",
    "ResourceId",
    "ResourceName",
    "ResourceType",
    "ServiceCategory",
    "ServiceName",
    "ServiceSubcategory",
    "SkuId",
    "SkuMeter",
    "SkuPriceDetails",
    "SkuPriceId",
    "SubAccountId",
    "SubAccountName",
    "SubAccountType",
    "Tags",
)
# 1.2 name -> the older name the validator requires. ResourceID is the validator's own spelling
# of 1.0's ResourceId; ChargeType is 1.0-preview's ChargeCategory, which its SkuPriceId rule reads.
VALIDATOR_NAMES = {
    "InvoiceIssuerName": "InvoiceIssuer",
    "ProviderName": "Provider",
    "PublisherName": "Publisher",
    "ResourceId": "ResourceID",
    "ChargeCategory": "ChargeType",
}
TOLLGATE = (
    "x_RequestId",
    "x_RequestCount",
    "x_Route",
    "x_RouteOwner",
    "x_Team",
    "x_KeyId",
    "x_Model",
    "x_Surface",
    "x_PriceTable",
    "x_PriceSource",
    "x_ListPriceTable",
    "x_CostBasis",
    "x_Status",
    "x_PromptVersion",
    "x_ReviewStatus",
    "x_UpstreamRequestId",
    "x_Simulated",
)
COLUMNS = (*FOCUS_1_2, *VALIDATOR_NAMES.values(), *TOLLGATE)

# What every Tollgate charge is, in FOCUS's closed vocabularies.
FIXED = {
    "BillingCurrency": "USD",
    "PricingCurrency": "USD",
    "ChargeCategory": "Usage",
    "ChargeFrequency": "Usage-Based",
    "PricingCategory": "Standard",  # a published table's rate: no commitment, no spot price
    "ServiceCategory": "AI and Machine Learning",
}
