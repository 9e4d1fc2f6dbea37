"""The raw log: Matomo's visitor log (Live.getLastVisitsDetails) as one record per action with its visit's fields,
read by site-local day without losing or repeating a visit while Matomo takes hits; and the streams about whole
days read (`reconciled_days`, Matomo's own totals in `visits_summary`). Nothing here imports the reports."""
