"""The book's code: runner, workspace, chapter helpers, statistics, plots, scorecard. Nothing in the library imports it."""
