package store

// Remembered is how many writes b remembers.
func (b *Bucket) Remembered() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.written)
}
