package image

// ReloadRegistryConfig reads the registry config at path again (netshim
// reloads it on SIGHUP): pulls that start afterwards use it, pulls under
// way keep the one they started with. A config that does not load changes
// nothing and is the error.
func (s *Store) ReloadRegistryConfig(path string) error {
	regs, err := loadRegistriesConf(path)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.regs = regs
	s.mu.Unlock()
	return nil
}

// registries is the registry config in force.
func (s *Store) registries() *registriesConf {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.regs
}
