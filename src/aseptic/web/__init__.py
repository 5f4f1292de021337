"""The web dashboard: static pages served by ``aseptic serve`` that talk only to the HTTP API.

The pages hold no data and no secrets; every figure on them comes from an authenticated API call
decided by the enforcement point, so each role sees exactly what its policy allows. No CDN: every
script, style and chart is in this package (docs/dashboard.md).

    mount_dashboard(app)   # GET / (the app), GET /ui/* (its files), strict security headers
"""

from aseptic.web._mount import CONTENT_SECURITY_POLICY, mount_dashboard

__all__ = ["CONTENT_SECURITY_POLICY", "mount_dashboard"]
