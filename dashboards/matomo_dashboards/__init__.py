"""Matomo's dashboards on the warehouse's dbt marts: dashboards.yml, its Superset bundle, a local Superset."""
