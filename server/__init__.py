"""crm-caldav server: configuration, command line, and the Radicale composition root."""
