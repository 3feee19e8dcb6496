//! Byte-level pieces of the router's HTTP/1.1 path: a read buffer that a
//! head is parsed from in place, and a decoder that finds where a chunked
//! body ends, so chunks are passed through as they came instead of being
//! decoded and encoded again.

use tokio::io::{AsyncRead, AsyncReadExt};

/// Bytes read from a socket and not yet used: `data[start..end]`.
pub(super) struct Buf {
    data: Vec<u8>,
    start: usize,
    end: usize,
}

impl Buf {
    pub(super) fn new() -> Buf {
        Buf {
            data: vec![0; 8 << 10],
            start: 0,
            end: 0,
        }
    }

    pub(super) fn filled(&self) -> &[u8] {
        &self.data[self.start..self.end]
    }

    pub(super) fn is_empty(&self) -> bool {
        self.start == self.end
    }

    pub(super) fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
    }

    pub(super) fn consume(&mut self, n: usize) {
        self.start += n;
        debug_assert!(self.start <= self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Reads once more from `from`, making room first (moving what is kept
    /// to the front, or growing up to `max` bytes). Returns the bytes read:
    /// 0 at end of stream. A buffer already holding `max` bytes is an error.
    pub(super) async fn fill<R: AsyncRead + Unpin>(
        &mut self,
        from: &mut R,
        max: usize,
    ) -> std::io::Result<usize> {
        if self.end == self.data.len() {
            if self.start > 0 {
                self.data.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else if self.data.len() < max {
                self.data.resize((self.data.len() * 2).min(max), 0);
            } else {
                return Err(std::io::Error::other(format!(
                    "more than {max} bytes without an end"
                )));
            }
        }
        let n = from.read(&mut self.data[self.end..]).await?;
        self.end += n;
        Ok(n)
    }
}

/// Where a chunked body ends (RFC 9112 §7.1), fed its bytes as they come.
#[derive(Default)]
pub(super) struct Chunked {
    state: State,
    size: u64,
    digits: u8,
}

#[derive(Default, Clone, Copy, PartialEq, Debug)]
enum State {
    /// The hex size of the next chunk.
    #[default]
    Size,
    /// `;name=value` after the size, up to the line's end.
    Extension,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    /// The start of a trailer line, or of the empty line that ends it all.
    TrailerStart,
    TrailerLine,
    EndLf,
    Done,
}

/// A chunked body that breaks the grammar.
#[derive(Debug, PartialEq)]
pub(super) struct BadChunk;

impl Chunked {
    /// Takes the next bytes of the body; returns how many of them belong to
    /// it, and whether the body ended with the last of those.
    pub(super) fn feed(&mut self, bytes: &[u8]) -> Result<(usize, bool), BadChunk> {
        let mut i = 0;
        while i < bytes.len() && self.state != State::Done {
            if self.state == State::Data {
                let n = (self.size.min((bytes.len() - i) as u64)) as usize;
                self.size -= n as u64;
                i += n;
                if self.size == 0 {
                    self.state = State::DataCr;
                }
                continue;
            }
            let b = bytes[i];
            i += 1;
            self.state = match (self.state, b) {
                (State::Size, _) if b.is_ascii_hexdigit() => {
                    let d = (b as char).to_digit(16).expect("a hex digit") as u64;
                    self.digits += 1;
                    if self.digits > 15 {
                        return Err(BadChunk);
                    }
                    self.size = self.size * 16 + d;
                    State::Size
                }
                (State::Size, b';' | b' ' | b'\t') if self.digits > 0 => State::Extension,
                (State::Size, b'\r') if self.digits > 0 => State::SizeLf,
                (State::Size, b'\n') | (State::SizeLf, b'\n') | (State::Extension, b'\n')
                    if self.digits > 0 =>
                {
                    self.digits = 0;
                    if self.size == 0 {
                        State::TrailerStart
                    } else {
                        State::Data
                    }
                }
                (State::Extension, _) => State::Extension,
                (State::DataCr, b'\r') => State::DataLf,
                (State::DataCr | State::DataLf, b'\n') => State::Size,
                (State::TrailerStart, b'\r') => State::EndLf,
                (State::TrailerStart | State::EndLf, b'\n') => State::Done,
                (State::TrailerLine, b'\n') => State::TrailerStart,
                (State::TrailerStart | State::TrailerLine, _) => State::TrailerLine,
                _ => return Err(BadChunk),
            };
        }
        Ok((i, self.state == State::Done))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(body: &[u8]) -> Result<(usize, bool), BadChunk> {
        Chunked::default().feed(body)
    }

    #[test]
    fn a_chunked_body_ends_after_its_last_chunk_and_trailers() {
        let body = b"5\r\nhello\r\n1;ext=1\r\n!\r\n0\r\nx-sum: 1\r\n\r\nNEXT";
        assert_eq!(whole(body), Ok((body.len() - 4, true)));
        assert_eq!(whole(b"0\r\n\r\n"), Ok((5, true)));
        assert_eq!(whole(b"A\r\n0123456789\r\n0\n\n"), Ok((18, true)));
    }

    #[test]
    fn fed_a_byte_at_a_time_it_ends_at_the_same_place() {
        let body = b"3\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\n\r\nrest";
        let mut c = Chunked::default();
        for (i, b) in body.iter().enumerate() {
            let (n, done) = c.feed(std::slice::from_ref(b)).unwrap();
            assert_eq!(n, 1);
            if done {
                assert_eq!(i + 1, body.len() - 4);
                return;
            }
        }
        panic!("never ended");
    }

    #[test]
    fn an_unfinished_body_is_not_ended_and_bad_grammar_is_refused() {
        assert_eq!(whole(b"5\r\nhel"), Ok((6, false)));
        assert_eq!(whole(b"0\r\nx-sum: 1\r\n"), Ok((13, false)));
        assert_eq!(whole(b"zz\r\n"), Err(BadChunk));
        assert_eq!(whole(b"\r\n"), Err(BadChunk));
        assert_eq!(whole(b"2\r\nabXY"), Err(BadChunk));
        assert_eq!(whole(b"ffffffffffffffff\r\n"), Err(BadChunk));
    }
}
