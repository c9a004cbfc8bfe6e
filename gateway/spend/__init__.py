"""Spend: budgets (in process and Redis), prices, token estimates, the reply cache."""
