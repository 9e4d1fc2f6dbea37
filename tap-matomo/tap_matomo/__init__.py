"""Singer tap for Matomo's raw analytics (Live.getLastVisitsDetails)."""
