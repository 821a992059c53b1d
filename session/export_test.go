package session

// LockEntries returns the number of per-address lock entries alive, for
// the leak checks of the external tests.
func LockEntries(m *Manager) int { return m.locks.len() }
