"""Matomo's reports (the Reporting API): which reports, their schemas, the periods a run reads for a site and when
(once final, again when Matomo changed them), the requests in flight, the rows as records, and what each run read
(`report_fetches`). Nothing here imports the raw log."""
