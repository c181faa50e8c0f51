"""The model seam: requests, the client that records every call, and the model providers (the builtin one lives in world/builtin)."""
