package session

// LockEntries returns the number of per-address lock entries alive
// besides those that hold a cached state, for the leak checks of the
// external tests.
func LockEntries(m *Manager) int { return m.locks.len() }

// CachedStates returns the number of addresses whose state m caches.
func CachedStates(m *Manager) int {
	m.locks.mu.Lock()
	defer m.locks.mu.Unlock()
	return m.locks.cached
}

// DropCache empties m's cache of parsed records.
func DropCache(m *Manager) {
	for _, s := range m.locks.dropAll() {
		s.free()
	}
}
