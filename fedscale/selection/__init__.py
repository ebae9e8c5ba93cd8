"""Client selection: the Selector interface, shared configuration, the pacer and the registry of selectors."""
