"""What the test-time adaptation tasks share: model loading, reward CLIPs, the run record."""
