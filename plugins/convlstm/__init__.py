"""convlstm plugin (in progress)."""
