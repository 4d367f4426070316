# IAP only: the SSH rule exists with the IAP range alone.
ssh_from_iap = true
