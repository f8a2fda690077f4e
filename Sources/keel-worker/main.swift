print("keel-worker")
