"""UniikkiLista: the waitlist, slot notices by email and SMS, and leaving with one click."""
