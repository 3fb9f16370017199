"""The server-rendered dashboard: sign-in sessions, page builders and chart data.

Routes live in api/routes/dashboard.py; templates in api/templates/, CSS, JS and the vendored
Chart.js in api/static/. Modules: session (cookie sign-in), weeks (time zone and local weeks),
charts (chart and sparkline data), render (Jinja and the security headers), and one builder per
page: overview, theme, features, operations, health.
"""
