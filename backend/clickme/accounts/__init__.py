"""Staff accounts: admins and researchers, their sessions, roles and CSRF protection."""
