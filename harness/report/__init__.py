"""From records to the board: the records frame, tables, ranking, number formats, leaderboard.md,
figures and publishing."""
