package store

// LeaseKey is the key of the target updater's lease: one object, written
// only with conditions, that says which updater instance reconciles.
const LeaseKey = "leases/target-updater.json"

// CheckKey accepts the keys a store reads and writes: those ParseKey
// accepts, and LeaseKey. Anything else gives an error wrapping
// ErrInvalidKey.
func CheckKey(key string) error {
	if key == LeaseKey {
		return nil
	}
	_, _, err := ParseKey(key)
	return err
}
