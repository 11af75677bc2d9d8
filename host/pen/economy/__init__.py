"""The economy around the CTB (issue 12): the product catalogue, the plan's two
trees, accounts, joining and the credit book. Read-only views over a CTB
(anything with get and state_prefix) plus builders of the records they lead
to; the rules themselves live in pen_protocol (publication, yearend,
membership) so every CTB enforces them."""
