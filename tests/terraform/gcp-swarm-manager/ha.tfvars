manager_count = 3
zones         = ["europe-west1-b", "europe-west1-c", "europe-west1-d"]
