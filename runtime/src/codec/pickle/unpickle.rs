//! The pickle machine: runs a pickle's opcodes and builds its objects,
//! calling nothing.
//!
//! Every length the input claims is checked against what is left of it
//! before anything is allocated, every opcode consumes at least one byte and
//! adds at most one object or stack entry, and the copies that whitelisted
//! calls make are bounded by the input's length, so the memory a pickle
//! costs is linear in its size. Nothing here recurses.

use std::collections::HashMap;
use std::fmt::Display;

use super::PickleError;
use super::opcode::{self, *};
use super::value::{Builtin, Id, Integer, Object, Objects};

/// The highest protocol this machine reads (and CPython writes).
pub(super) const HIGHEST_PROTOCOL: u8 = 5;

/// Runs the pickle `input` and returns its objects and the id of the one
/// `STOP` returned. `input` must end right after that `STOP`.
pub(super) fn unpickle(input: &[u8]) -> Result<(Objects, Id), PickleError> {
    Machine::new(input).run()
}

/// The state of a pickle being run.
struct Machine<'a> {
    input: &'a [u8],
    /// The next byte to read.
    pos: usize,
    /// The opcode being run, and where it starts, for error messages.
    op: u8,
    op_pos: usize,
    objects: Objects,
    stack: Vec<Id>,
    /// The stack length at each open MARK, innermost last.
    marks: Vec<usize>,
    memo: HashMap<u64, Id>,
    /// How many more ids or bytes whitelisted calls may copy.
    copy_budget: usize,
}

impl<'a> Machine<'a> {
    fn new(input: &'a [u8]) -> Self {
        Machine {
            input,
            pos: 0,
            op: 0,
            op_pos: 0,
            objects: Objects::default(),
            stack: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
            copy_budget: input.len(),
        }
    }

    /// An error in the opcode being run.
    fn fail(&self, message: impl Display) -> PickleError {
        let name = opcode::name(self.op).unwrap_or("?");
        PickleError::new(format!("{message} ({name} at byte {})", self.op_pos))
    }

    fn left(&self) -> usize {
        self.input.len() - self.pos
    }

    /// The next `len` bytes, which the opcode claims are there.
    fn take(&mut self, len: u64) -> Result<&'a [u8], PickleError> {
        let left = self.left();
        if len > left as u64 {
            return Err(self.fail(format_args!(
                "the pickle is truncated or corrupt: {len} bytes are needed but only {left} are left"
            )));
        }
        let bytes = &self.input[self.pos..self.pos + len as usize];
        self.pos += len as usize;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], PickleError> {
        let mut array = [0u8; N];
        array.copy_from_slice(self.take(N as u64)?);
        Ok(array)
    }

    fn u8(&mut self) -> Result<u8, PickleError> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, PickleError> {
        self.array().map(u16::from_le_bytes)
    }

    fn u32(&mut self) -> Result<u32, PickleError> {
        self.array().map(u32::from_le_bytes)
    }

    fn i32(&mut self) -> Result<i32, PickleError> {
        self.array().map(i32::from_le_bytes)
    }

    fn u64(&mut self) -> Result<u64, PickleError> {
        self.array().map(u64::from_le_bytes)
    }

    /// A 4-byte signed length, as BINSTRING and LONG4 have.
    fn signed_len(&mut self) -> Result<u64, PickleError> {
        let len = self.i32()?;
        u64::try_from(len).map_err(|_| self.fail(format_args!("negative length {len}")))
    }

    /// The text up to the next newline (protocol 0 arguments), without it.
    fn line(&mut self) -> Result<&'a [u8], PickleError> {
        let rest = &self.input[self.pos..];
        let Some(end) = rest.iter().position(|&b| b == b'\n') else {
            return Err(self.fail("the pickle is truncated: a text argument has no closing newline"));
        };
        self.pos += end + 1;
        Ok(&rest[..end])
    }

    fn text_line(&mut self) -> Result<&'a str, PickleError> {
        let line = self.line()?;
        std::str::from_utf8(line).map_err(|_| self.fail("a text argument is not valid UTF-8"))
    }

    /// The top of the stack above the innermost MARK.
    fn fence(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    fn underflow(&self) -> PickleError {
        self.fail("the pickle is corrupt: it takes more values from the stack than it put there")
    }

    fn pop(&mut self) -> Result<Id, PickleError> {
        if self.stack.len() <= self.fence() {
            return Err(self.underflow());
        }
        self.stack.pop().ok_or_else(|| self.underflow())
    }

    fn top(&self) -> Result<Id, PickleError> {
        if self.stack.len() <= self.fence() {
            return Err(self.underflow());
        }
        self.stack.last().copied().ok_or_else(|| self.underflow())
    }

    /// Pops everything down to the innermost MARK, and the MARK.
    fn pop_mark(&mut self) -> Result<Vec<Id>, PickleError> {
        let Some(mark) = self.marks.pop() else {
            return Err(self.fail("the pickle is corrupt: no MARK to pop to"));
        };
        if mark > self.stack.len() {
            return Err(self.underflow());
        }
        Ok(self.stack.split_off(mark))
    }

    fn push(&mut self, object: Object) {
        let id = self.objects.add(object);
        self.stack.push(id);
    }

    fn memo_put(&mut self, key: u64) -> Result<(), PickleError> {
        let top = self.top()?;
        self.memo.insert(key, top);
        Ok(())
    }

    fn memo_get(&mut self, key: u64) -> Result<(), PickleError> {
        match self.memo.get(&key) {
            Some(&id) => {
                self.stack.push(id);
                Ok(())
            }
            None => Err(self.fail(format_args!("the pickle is corrupt: memo key {key} was never stored"))),
        }
    }

    /// Counts `n` ids or bytes copied by a whitelisted call.
    fn copy(&mut self, n: usize) -> Result<(), PickleError> {
        self.copy_budget = self.copy_budget.checked_sub(n).ok_or_else(|| {
            self.fail("the pickle copies the same objects more often than its size allows; refusing it")
        })?;
        Ok(())
    }

    fn run(mut self) -> Result<(Objects, Id), PickleError> {
        loop {
            self.op_pos = self.pos;
            let Some(&op) = self.input.get(self.pos) else {
                return Err(PickleError::new(format!(
                    "the pickle is truncated: it ends at byte {} without a STOP opcode",
                    self.pos
                )));
            };
            self.pos += 1;
            self.op = op;
            if op == STOP {
                let root = self.pop()?;
                let left = self.left();
                if left != 0 {
                    return Err(self.fail(format_args!("{left} bytes follow the end of the pickle")));
                }
                return Ok((self.objects, root));
            }
            self.step(op)?;
        }
    }

    /// Runs one opcode other than STOP.
    fn step(&mut self, op: u8) -> Result<(), PickleError> {
        match op {
            PROTO => {
                let protocol = self.u8()?;
                if protocol > HIGHEST_PROTOCOL {
                    return Err(self.fail(format_args!(
                        "unsupported pickle protocol {protocol}: protocols 0 to {HIGHEST_PROTOCOL} are read"
                    )));
                }
            }
            FRAME => {
                // Frames only group opcodes for buffered reading; all of the
                // input is here, so they only need to be whole.
                let len = self.u64()?;
                let left = self.left();
                if len > left as u64 {
                    return Err(self.fail(format_args!(
                        "the pickle is truncated: a frame of {len} bytes has only {left} left"
                    )));
                }
            }
            MARK => self.marks.push(self.stack.len()),
            POP => {
                // As in Python, POP right after a MARK removes the MARK.
                if self.stack.len() == self.fence() && !self.marks.is_empty() {
                    self.pop_mark()?;
                } else {
                    self.pop()?;
                }
            }
            POP_MARK => {
                self.pop_mark()?;
            }
            DUP => {
                let top = self.top()?;
                self.stack.push(top);
            }

            PUT => {
                let line = self.text_line()?;
                let key = line.trim().parse().map_err(|_| self.fail("invalid memo key"))?;
                self.memo_put(key)?;
            }
            BINPUT => {
                let key = self.u8()?;
                self.memo_put(u64::from(key))?;
            }
            LONG_BINPUT => {
                let key = self.u32()?;
                self.memo_put(u64::from(key))?;
            }
            MEMOIZE => self.memo_put(self.memo.len() as u64)?,
            GET => {
                let line = self.text_line()?;
                let key = line.trim().parse().map_err(|_| self.fail("invalid memo key"))?;
                self.memo_get(key)?;
            }
            BINGET => {
                let key = self.u8()?;
                self.memo_get(u64::from(key))?;
            }
            LONG_BINGET => {
                let key = self.u32()?;
                self.memo_get(u64::from(key))?;
            }

            NONE => self.push(Object::None),
            NEWTRUE => self.push(Object::Bool(true)),
            NEWFALSE => self.push(Object::Bool(false)),
            INT => {
                let line = self.text_line()?;
                let object = match line {
                    // Protocols 0 and 1 write booleans as these.
                    "00" => Object::Bool(false),
                    "01" => Object::Bool(true),
                    _ => Object::Int(Integer::parse_decimal(line).map_err(|e| self.fail(e))?),
                };
                self.push(object);
            }
            BININT => {
                let i = self.i32()?;
                self.push(Object::Int(Integer::Small(i.into())));
            }
            BININT1 => {
                let i = self.u8()?;
                self.push(Object::Int(Integer::Small(i.into())));
            }
            BININT2 => {
                let i = self.u16()?;
                self.push(Object::Int(Integer::Small(i.into())));
            }
            LONG => {
                let line = self.text_line()?;
                let digits = line.strip_suffix('L').unwrap_or(line);
                let int = Integer::parse_decimal(digits).map_err(|e| self.fail(e))?;
                self.push(Object::Int(int));
            }
            LONG1 => {
                let len = self.u8()?;
                let bytes = self.take(len.into())?;
                self.push(Object::Int(Integer::from_twos_complement(bytes)));
            }
            LONG4 => {
                let len = self.signed_len()?;
                let bytes = self.take(len)?;
                self.push(Object::Int(Integer::from_twos_complement(bytes)));
            }
            FLOAT => {
                let line = self.text_line()?;
                let f = line
                    .trim()
                    .parse()
                    .map_err(|_| self.fail(format_args!("`{}` is not a float", line.escape_debug())))?;
                self.push(Object::Float(f));
            }
            BINFLOAT => {
                let f = f64::from_be_bytes(self.array()?);
                self.push(Object::Float(f));
            }

            STRING => {
                let line = self.line()?;
                let quoted = match line {
                    [q @ (b'\'' | b'"'), inner @ .., last] if q == last => inner,
                    _ => return Err(self.fail("the argument of STRING is not quoted")),
                };
                let bytes = escape_decode(quoted).map_err(|e| self.fail(e))?;
                self.push(legacy_string(bytes));
            }
            BINSTRING => {
                let len = self.signed_len()?;
                let bytes = self.take(len)?.to_vec();
                self.push(legacy_string(bytes));
            }
            SHORT_BINSTRING => {
                let len = self.u8()?;
                let bytes = self.take(len.into())?.to_vec();
                self.push(legacy_string(bytes));
            }
            UNICODE => {
                let line = self.line()?;
                let s = raw_unicode_escape_decode(line).map_err(|e| self.fail(e))?;
                self.push(Object::Str(s));
            }
            BINUNICODE => {
                let len = self.u32()?;
                self.unicode(len.into())?;
            }
            SHORT_BINUNICODE => {
                let len = self.u8()?;
                self.unicode(len.into())?;
            }
            BINUNICODE8 => {
                let len = self.u64()?;
                self.unicode(len)?;
            }
            BINBYTES => {
                let len = self.u32()?;
                self.bytes(len.into())?;
            }
            SHORT_BINBYTES => {
                let len = self.u8()?;
                self.bytes(len.into())?;
            }
            BINBYTES8 | BYTEARRAY8 => {
                let len = self.u64()?;
                self.bytes(len)?;
            }

            EMPTY_LIST => self.push(Object::List(Vec::new())),
            EMPTY_TUPLE => self.push(Object::Tuple(Vec::new())),
            EMPTY_DICT => self.push(Object::Dict(Vec::new())),
            EMPTY_SET => self.push(Object::Set(Vec::new())),
            LIST => {
                let items = self.pop_mark()?;
                self.push(Object::List(items));
            }
            TUPLE => {
                let items = self.pop_mark()?;
                self.push(Object::Tuple(items));
            }
            TUPLE1 | TUPLE2 | TUPLE3 => {
                let n = usize::from(op - TUPLE1) + 1;
                if self.stack.len() < self.fence() + n {
                    return Err(self.underflow());
                }
                let items = self.stack.split_off(self.stack.len() - n);
                self.push(Object::Tuple(items));
            }
            DICT => {
                let items = self.pop_mark()?;
                let pairs = self.pairs(items)?;
                self.push(Object::Dict(pairs));
            }
            FROZENSET => {
                let items = self.pop_mark()?;
                self.push(Object::FrozenSet(items));
            }
            APPEND => {
                let item = self.pop()?;
                self.append(vec![item])?;
            }
            APPENDS => {
                let items = self.pop_mark()?;
                self.append(items)?;
            }
            SETITEM => {
                let value = self.pop()?;
                let key = self.pop()?;
                self.set_items(vec![(key, value)])?;
            }
            SETITEMS => {
                let items = self.pop_mark()?;
                let pairs = self.pairs(items)?;
                self.set_items(pairs)?;
            }
            ADDITEMS => {
                let items = self.pop_mark()?;
                let set = self.top()?;
                match self.objects.get_mut(set) {
                    Object::Set(set) => set.extend(items),
                    other => {
                        let what = other.describe();
                        return Err(self.fail(format_args!("the pickle adds set items to a {what}")));
                    }
                }
            }

            GLOBAL => {
                let module = self.text_line()?;
                let name = self.text_line()?;
                self.global(module, name)?;
            }
            STACK_GLOBAL => {
                let name = self.pop()?;
                let module = self.pop()?;
                match (self.objects.get(module), self.objects.get(name)) {
                    (Object::Str(module), Object::Str(name)) => {
                        let (module, name) = (module.clone(), name.clone());
                        self.global(&module, &name)?;
                    }
                    _ => return Err(self.fail("the pickle is corrupt: STACK_GLOBAL needs two strs")),
                }
            }
            REDUCE => {
                let args = self.pop()?;
                let callable = self.pop()?;
                let object = self.reduce(callable, args)?;
                self.push(object);
            }
            INST => {
                let module = self.text_line()?;
                let name = self.text_line()?;
                return Err(self.refuse(module, name));
            }
            OBJ | NEWOBJ | NEWOBJ_EX => {
                return Err(self.fail(
                    "refusing to create a class instance: only builtin values are decoded, \
                     and no builtin value needs this",
                ));
            }
            BUILD => {
                return Err(self.fail("refusing to set an object's state: only builtin values are decoded"));
            }
            PERSID | BINPERSID => {
                return Err(self.fail("refusing a persistent id: only builtin values are decoded"));
            }
            EXT1 | EXT2 | EXT4 => {
                return Err(self.fail(
                    "refusing a class from copyreg's extension registry: only builtin values are decoded",
                ));
            }
            NEXT_BUFFER | READONLY_BUFFER => {
                return Err(self.fail("out-of-band buffers (protocol 5 `buffer_callback`) are not supported"));
            }
            _ => {
                return Err(PickleError::new(format!(
                    "invalid opcode 0x{op:02x} at byte {}: the data is not a pickle, or is corrupt",
                    self.op_pos
                )));
            }
        }
        Ok(())
    }

    fn unicode(&mut self, len: u64) -> Result<(), PickleError> {
        let bytes = self.take(len)?;
        let s = std::str::from_utf8(bytes).map_err(|_| {
            self.fail("a str is not valid UTF-8 (a Python str with a lone surrogate has no Rust equivalent)")
        })?;
        self.push(Object::Str(s.to_owned()));
        Ok(())
    }

    fn bytes(&mut self, len: u64) -> Result<(), PickleError> {
        let bytes = self.take(len)?.to_vec();
        self.push(Object::Bytes(bytes));
        Ok(())
    }

    /// Pairs up the keys and values of DICT and SETITEMS.
    fn pairs(&self, items: Vec<Id>) -> Result<Vec<(Id, Id)>, PickleError> {
        if !items.len().is_multiple_of(2) {
            return Err(self.fail("the pickle is corrupt: a dict key has no value"));
        }
        Ok(items.chunks_exact(2).map(|pair| (pair[0], pair[1])).collect())
    }

    fn append(&mut self, items: Vec<Id>) -> Result<(), PickleError> {
        let list = self.top()?;
        match self.objects.get_mut(list) {
            Object::List(list) => {
                list.extend(items);
                Ok(())
            }
            other => {
                let what = other.describe();
                Err(self.fail(format_args!("the pickle appends to a {what}, which is not a list")))
            }
        }
    }

    fn set_items(&mut self, pairs: Vec<(Id, Id)>) -> Result<(), PickleError> {
        let dict = self.top()?;
        match self.objects.get_mut(dict) {
            Object::Dict(dict) => {
                dict.extend(pairs);
                Ok(())
            }
            other => {
                let what = other.describe();
                Err(self.fail(format_args!("the pickle sets items of a {what}, which is not a dict")))
            }
        }
    }

    fn refuse(&self, module: &str, name: &str) -> PickleError {
        self.fail(format_args!(
            "refusing to unpickle `{}.{}`: only builtin values are decoded",
            module.escape_debug(),
            name.escape_debug()
        ))
    }

    /// Pushes the global `module.name` if it is whitelisted.
    fn global(&mut self, module: &str, name: &str) -> Result<(), PickleError> {
        if let Some(builtin) = Builtin::lookup(module, name) {
            self.push(Object::Builtin(builtin));
            return Ok(());
        }
        match (module, name) {
            // Protocols 0 and 1 write an instance as
            // `copyreg._reconstructor(cls, ...)`: wait for `cls`, so the
            // error names the class the user pickled.
            ("copyreg" | "copy_reg", "_reconstructor" | "__newobj__" | "__newobj_ex__") => {
                self.push(Object::Refused(format!("{module}.{name}")));
                Ok(())
            }
            _ => Err(self.refuse(module, name)),
        }
    }

    /// Calls a whitelisted builtin as Python would, for the argument forms
    /// Python's own pickler writes.
    fn reduce(&mut self, callable: Id, args: Id) -> Result<Object, PickleError> {
        let builtin = match self.objects.get(callable) {
            Object::Builtin(builtin) => *builtin,
            Object::Refused(name) => {
                let (module, name) = name.split_once('.').unwrap_or(("", name));
                return Err(self.refuse(module, name));
            }
            other => {
                let what = other.describe();
                return Err(self.fail(format_args!("the pickle calls a {what}, which is not callable")));
            }
        };
        let args = match self.objects.get(args) {
            Object::Tuple(args) if args.len() <= 3 => args.clone(),
            other => {
                let what = other.describe();
                return Err(
                    self.fail(format_args!("`{}` is called with a {what} as its arguments", builtin.name()))
                );
            }
        };
        let args_len = args.len();
        let args: Vec<&Object> = args.iter().map(|&id| self.objects.get(id)).collect();
        let result = match (builtin, args.as_slice()) {
            (Builtin::Bytes | Builtin::ByteArray, []) => Ok(Object::Bytes(Vec::new())),
            (Builtin::Set, []) => Ok(Object::Set(Vec::new())),
            (Builtin::FrozenSet, []) => Ok(Object::FrozenSet(Vec::new())),
            (
                Builtin::Set | Builtin::FrozenSet,
                [
                    Object::List(items)
                    | Object::Tuple(items)
                    | Object::Set(items)
                    | Object::FrozenSet(items),
                ],
            ) => {
                let items = items.clone();
                Ok(if builtin == Builtin::Set { Object::Set(items) } else { Object::FrozenSet(items) })
            }
            (Builtin::Bytes | Builtin::ByteArray, [Object::Bytes(bytes)]) => Ok(Object::Bytes(bytes.clone())),
            (Builtin::CodecsEncode, [Object::Str(s)]) => encode(s, "utf-8"),
            (
                Builtin::CodecsEncode | Builtin::Bytes | Builtin::ByteArray,
                [Object::Str(s), Object::Str(encoding)] | [Object::Str(s), Object::Str(encoding), _],
            ) => encode(s, encoding),
            _ => {
                let args: Vec<String> = args.iter().map(|a| a.describe()).collect();
                Err(format!(
                    "`{}` is called with unsupported arguments ({})",
                    builtin.name(),
                    args.join(", ")
                ))
            }
        };
        let object = result.map_err(|e| self.fail(e))?;
        let copied = match &object {
            Object::Set(items) | Object::FrozenSet(items) => items.len(),
            Object::Bytes(bytes) => bytes.len(),
            _ => 0,
        };
        self.copy(copied + args_len)?;
        Ok(object)
    }
}

/// A protocol-0-2 8-bit string: Python 3 decodes it as text by default, so
/// it is a str when it is UTF-8, else bytes.
fn legacy_string(bytes: Vec<u8>) -> Object {
    match String::from_utf8(bytes) {
        Ok(s) => Object::Str(s),
        Err(e) => Object::Bytes(e.into_bytes()),
    }
}

/// `str.encode(encoding)` for the encodings picklers use.
fn encode(s: &str, encoding: &str) -> Result<Object, String> {
    let narrow = |max: u32| {
        s.chars()
            .map(|c| u8::try_from(u32::from(c)).ok().filter(|&b| u32::from(b) <= max))
            .collect::<Option<Vec<u8>>>()
            .map(Object::Bytes)
            .ok_or_else(|| format!("a str cannot be encoded as {encoding}"))
    };
    match encoding.to_ascii_lowercase().replace('_', "-").as_str() {
        "latin1" | "latin-1" | "iso-8859-1" | "iso8859-1" | "l1" => narrow(0xff),
        "ascii" | "us-ascii" => narrow(0x7f),
        "utf-8" | "utf8" => Ok(Object::Bytes(s.as_bytes().to_vec())),
        _ => Err(format!("unsupported encoding `{}`", encoding.escape_debug())),
    }
}

/// Python's `codecs.escape_decode`, which undoes the quoting of STRING.
fn escape_decode(quoted: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(quoted.len());
    let mut bytes = quoted.iter().copied().peekable();
    while let Some(b) = bytes.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        let Some(escape) = bytes.next() else {
            return Err("a STRING ends with a lone backslash".into());
        };
        match escape {
            b'\n' => {}
            b'\\' | b'\'' | b'"' => out.push(escape),
            b'a' => out.push(0x07),
            b'b' => out.push(0x08),
            b't' => out.push(b'\t'),
            b'n' => out.push(b'\n'),
            b'v' => out.push(0x0b),
            b'f' => out.push(0x0c),
            b'r' => out.push(b'\r'),
            b'0'..=b'7' => {
                let mut value = u32::from(escape - b'0');
                for _ in 0..2 {
                    match bytes.peek() {
                        Some(&d @ b'0'..=b'7') => {
                            value = value * 8 + u32::from(d - b'0');
                            bytes.next();
                        }
                        _ => break,
                    }
                }
                out.push(value as u8);
            }
            b'x' => {
                let hex = [bytes.next(), bytes.next()];
                let digit = |d: Option<u8>| d.and_then(|d| char::from(d).to_digit(16));
                match (digit(hex[0]), digit(hex[1])) {
                    (Some(hi), Some(lo)) => out.push((hi * 16 + lo) as u8),
                    _ => return Err("a STRING has an invalid \\x escape".into()),
                }
            }
            other => out.extend([b'\\', other]),
        }
    }
    Ok(out)
}

/// Python's `raw-unicode-escape` decoding, which UNICODE uses: bytes are
/// Latin-1 characters, except `\uXXXX` and `\UXXXXXXXX` after an odd number
/// of backslashes.
fn raw_unicode_escape_decode(line: &[u8]) -> Result<String, String> {
    let mut out = String::with_capacity(line.len());
    let mut i = 0;
    while i < line.len() {
        if line[i] != b'\\' {
            out.push(char::from(line[i]));
            i += 1;
            continue;
        }
        let run = line[i..].iter().take_while(|&&b| b == b'\\').count();
        let after = i + run;
        let digits = match line.get(after) {
            Some(b'u') if run % 2 == 1 => 4,
            Some(b'U') if run % 2 == 1 => 8,
            _ => {
                out.extend(std::iter::repeat_n('\\', run));
                i = after;
                continue;
            }
        };
        out.extend(std::iter::repeat_n('\\', run - 1));
        let hex = line
            .get(after + 1..after + 1 + digits)
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .filter(|hex| hex.bytes().all(|d| d.is_ascii_hexdigit()))
            .ok_or("a UNICODE argument has a truncated \\u escape")?;
        let code = u32::from_str_radix(hex, 16).map_err(|e| e.to_string())?;
        let c = char::from_u32(code).ok_or_else(|| {
            format!("a str holds U+{code:04X}, which is a lone surrogate or out of range and has no Rust equivalent")
        })?;
        out.push(c);
        i = after + 1 + digits;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_decode_undoes_python_repr() {
        assert_eq!(escape_decode(br"a\'b\\c\n\x00\xff\101\7").unwrap(), b"a'b\\c\n\x00\xffA\x07");
        assert_eq!(escape_decode(br"\q").unwrap(), b"\\q");
        assert!(escape_decode(br"\x4").is_err());
        assert!(escape_decode(b"\\").is_err());
    }

    #[test]
    fn raw_unicode_escape_follows_the_odd_backslash_rule() {
        assert_eq!(raw_unicode_escape_decode(b"a\\u005cu1234").unwrap(), "a\\u1234");
        assert_eq!(raw_unicode_escape_decode(b"\\u20ac\\U0001f600\xe9").unwrap(), "\u{20ac}\u{1f600}\u{e9}");
        assert_eq!(raw_unicode_escape_decode(b"\\\\u20ac").unwrap(), "\\\\u20ac");
        assert_eq!(raw_unicode_escape_decode(b"\\\\\\u20ac").unwrap(), "\\\\\u{20ac}");
        assert!(raw_unicode_escape_decode(b"\\u12").is_err());
        assert!(raw_unicode_escape_decode(b"\\ud800").is_err());
    }
}
