"""handlab's zoo weights too large for the handlab wheel; ``handlab.zoo`` finds them here."""
