"""Screens of the TUI (Sample, Train, Runs, help): thin wiring of widgets and the bridge."""
