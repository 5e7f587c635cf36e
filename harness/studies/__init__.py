"""Studies beyond the main tables, each owning its leaderboard sections and figures: MUSO's regime,
linear exactness, forgetting quality."""
