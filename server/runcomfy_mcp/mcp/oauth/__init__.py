"""OAuth 2.1 for the HTTP server: the SDK's authorization pieces, fed by the grant service, and the consent page."""
