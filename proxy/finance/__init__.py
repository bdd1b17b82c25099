"""Money after the fact: spend reports, the FOCUS export, reconciliation with the
providers' own figures, the ledger queries of the admin API and console, and `tollgate estimate`."""
