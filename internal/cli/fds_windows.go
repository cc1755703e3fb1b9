package cli

// closeInheritedOnExec does nothing: Windows children inherit only the
// handles they are given.
func closeInheritedOnExec() {}
