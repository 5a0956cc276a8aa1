package httpapi

// maxPooledAnswer is the largest answer buffer kept for reuse: a list page
// may grow one far past a reservation or a problem, and keeping that would
// pin its memory.
const maxPooledAnswer = 4 << 10

// getAnswer returns an empty buffer for encoding one answer. The writer
// copies what it is given (io.Writer must not retain it), so the buffer
// goes back with putAnswer as soon as the answer is written.
func (s *Server) getAnswer() *[]byte { return s.answers.Get().(*[]byte) }

// putAnswer returns bp, whose contents grew to b, to the pool.
func (s *Server) putAnswer(bp *[]byte, b []byte) {
	if cap(b) <= maxPooledAnswer {
		*bp = b[:0]
		s.answers.Put(bp)
	}
}
