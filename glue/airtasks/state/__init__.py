"""What the scaler keeps between passes: its scale-in memory and its decision history."""
