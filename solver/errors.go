package solver

// explainedError puts a sentence written for the person reading the
// Challenge's status in place of its cause's text, and keeps the cause for
// errors.Is and errors.As.
type explainedError struct {
	msg   string
	cause error
}

func (e *explainedError) Error() string { return e.msg }
func (e *explainedError) Unwrap() error { return e.cause }
