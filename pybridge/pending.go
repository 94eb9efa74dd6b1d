package pybridge

// RunPending runs, now, the jobs already queued for this worker (tm timers
// submitted through Engine.SubmitWait), and returns how many ran. Call it
// only from inside a job of this same worker (attached): `kemigo test`
// runs a whole test session as one job, so timers that fire while a test
// waits would otherwise wait for the session to end.
func (w *Worker) RunPending() int {
	n := 0
	for {
		select {
		case job, ok := <-w.jobs:
			if !ok {
				return n
			}
			job(w)
			n++
		default:
			return n
		}
	}
}
