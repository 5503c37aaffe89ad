"""The one SSL training loop and its schedules."""
