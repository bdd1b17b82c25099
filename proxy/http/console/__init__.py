"""The console under `/ui`: server-rendered pages for the people who review images and
read the bill, served by the proxy itself. It reads the ledger through the same
functions as the admin API (proxy/finance/ledger_queries.py), so the two never disagree.

Its pages are in routes.py, imported at the console's first request (app.py);
sessions.py is what the app holds from start-up."""
