//! serde's side of encoding: a `Serializer` that writes pickle opcodes.
//!
//! The output is what CPython's pickler writes for the same builtin values,
//! minus the memo (no PUT or MEMOIZE: a Rust value has no shared parts to
//! refer back to): the same opcodes, batches of 1000 items per APPENDS or
//! SETITEMS, and from protocol 4 the same 64 KiB frames.

use serde::ser::{self, Serialize};

use super::PickleError;
use super::opcode::*;

/// Python's `_FRAME_SIZE_TARGET`: a frame is closed once it reaches this,
/// and a str or bytes this long is written outside any frame.
const FRAME_SIZE_TARGET: usize = 64 * 1024;

/// Python's `_FRAME_SIZE_MIN`: a shorter frame gets no FRAME header.
const FRAME_SIZE_MIN: usize = 4;

/// FRAME and its 8-byte length.
const FRAME_HEADER: usize = 9;

/// Python's `_BATCHSIZE`: items per APPENDS or SETITEMS.
const BATCH_SIZE: usize = 1000;

/// Writes one pickle.
#[derive(Debug)]
pub(super) struct Pickler {
    out: Vec<u8>,
    protocol: u8,
    /// Where the header of the open frame goes, from protocol 4.
    frame: Option<usize>,
    /// How many dict keys are being written (so a list inside one, which
    /// Python could not hash, is refused here rather than by Python).
    in_key: usize,
}

/// The `serialize_*` methods of the integers that fit an `i128`: every one
/// is an `int` in Python.
macro_rules! serialize_integer {
    ($($method:ident: $ty:ty,)*) => {$(
        fn $method(self, v: $ty) -> Result<(), PickleError> {
            self.int(v.into());
            Ok(())
        }
    )*};
}

impl Pickler {
    /// Starts a pickle of `protocol`, which must be 2 to 5.
    pub(super) fn new(protocol: u8) -> Self {
        let mut pickler = Pickler { out: vec![PROTO, protocol], protocol, frame: None, in_key: 0 };
        pickler.open_frame();
        pickler
    }

    /// Ends the pickle after the one value serialized into it.
    pub(super) fn finish(mut self) -> Vec<u8> {
        self.op(STOP);
        self.close_frame();
        self.out
    }

    fn open_frame(&mut self) {
        if self.protocol >= 4 {
            self.frame = Some(self.out.len());
            self.out.extend([0; FRAME_HEADER]);
        }
    }

    fn close_frame(&mut self) {
        let Some(start) = self.frame.take() else { return };
        let len = self.out.len() - start - FRAME_HEADER;
        if len >= FRAME_SIZE_MIN {
            self.out[start] = FRAME;
            self.out[start + 1..start + FRAME_HEADER].copy_from_slice(&(len as u64).to_le_bytes());
        } else {
            self.out.drain(start..start + FRAME_HEADER);
        }
    }

    /// Called before each opcode: starts a new frame once one is full.
    fn boundary(&mut self) {
        if let Some(start) = self.frame
            && self.out.len() - start - FRAME_HEADER >= FRAME_SIZE_TARGET
        {
            self.close_frame();
            self.open_frame();
        }
    }

    fn op(&mut self, opcode: u8) {
        self.boundary();
        self.out.push(opcode);
    }

    fn op_with(&mut self, opcode: u8, arg: &[u8]) {
        self.op(opcode);
        self.out.extend_from_slice(arg);
    }

    /// An opcode, its length argument and its payload; like Python, a large
    /// payload goes outside the frames, so it is not copied into one.
    fn op_payload(&mut self, opcode: u8, len: &[u8], payload: &[u8]) {
        if self.frame.is_some() && payload.len() >= FRAME_SIZE_TARGET {
            self.close_frame();
            self.out.push(opcode);
            self.out.extend_from_slice(len);
            self.out.extend_from_slice(payload);
            self.open_frame();
        } else {
            self.op_with(opcode, len);
            self.out.extend_from_slice(payload);
        }
    }

    fn int(&mut self, i: i128) {
        if let Ok(i) = u8::try_from(i) {
            self.op_with(BININT1, &[i]);
        } else if let Ok(i) = u16::try_from(i) {
            self.op_with(BININT2, &i.to_le_bytes());
        } else if let Ok(i) = i32::try_from(i) {
            self.op_with(BININT, &i.to_le_bytes());
        } else {
            self.long(&i.to_le_bytes());
        }
    }

    fn uint(&mut self, u: u128) {
        match i128::try_from(u) {
            Ok(i) => self.int(i),
            Err(_) => {
                let mut bytes = [0u8; 17];
                bytes[..16].copy_from_slice(&u.to_le_bytes());
                self.long(&bytes);
            }
        }
    }

    /// LONG1 of the little-endian two's complement `bytes`, shortened as
    /// Python's `encode_long` does.
    fn long(&mut self, mut bytes: &[u8]) {
        while let [.., prev, last] = bytes
            && ((*last == 0 && prev & 0x80 == 0) || (*last == 0xff && prev & 0x80 != 0))
        {
            bytes = &bytes[..bytes.len() - 1];
        }
        self.op_with(LONG1, &[bytes.len() as u8]);
        self.out.extend_from_slice(bytes);
    }

    fn str(&mut self, s: &str) -> Result<(), PickleError> {
        let len = s.len();
        if self.protocol >= 4 && len < 256 {
            self.op_payload(SHORT_BINUNICODE, &[len as u8], s.as_bytes());
        } else if let Ok(len) = u32::try_from(len) {
            self.op_payload(BINUNICODE, &len.to_le_bytes(), s.as_bytes());
        } else if self.protocol >= 4 {
            self.op_payload(BINUNICODE8, &(len as u64).to_le_bytes(), s.as_bytes());
        } else {
            return Err(PickleError::new("a str of 4 GiB or more needs pickle protocol 4 or higher"));
        }
        Ok(())
    }

    fn bytes(&mut self, b: &[u8]) -> Result<(), PickleError> {
        let len = b.len();
        if self.protocol < 3 {
            // Protocol 2 has no bytes type: Python writes
            // `_codecs.encode(b.decode('latin1'), 'latin1')`.
            self.op_with(GLOBAL, b"_codecs\nencode\n");
            let latin1: String = b.iter().map(|&byte| char::from(byte)).collect();
            self.str(&latin1)?;
            self.str("latin1")?;
            self.op(TUPLE2);
            self.op(REDUCE);
        } else if len < 256 {
            self.op_payload(SHORT_BINBYTES, &[len as u8], b);
        } else if let Ok(len) = u32::try_from(len) {
            self.op_payload(BINBYTES, &len.to_le_bytes(), b);
        } else if self.protocol >= 4 {
            self.op_payload(BINBYTES8, &(len as u64).to_le_bytes(), b);
        } else {
            return Err(PickleError::new("bytes of 4 GiB or more need pickle protocol 4 or higher"));
        }
        Ok(())
    }

    /// Refuses a container where Python needs a hashable dict key.
    fn hashable(&self, what: &str) -> Result<(), PickleError> {
        if self.in_key > 0 {
            return Err(PickleError::new(format!(
                "a dict key cannot hold a {what}, which Python cannot hash; use a str, a number or a tuple"
            )));
        }
        Ok(())
    }

    /// Opens `{variant: ...}`, the form of a variant that has a value.
    fn begin_variant(&mut self, variant: &str) -> Result<(), PickleError> {
        self.hashable("dict (an enum variant with a value)")?;
        self.op(EMPTY_DICT);
        self.str(variant)
    }
}

/// A list, dict or tuple being written, maybe as the value of a variant.
#[derive(Debug)]
pub(super) struct Compound<'a> {
    pickler: &'a mut Pickler,
    /// Items (or dict entries) in the open APPENDS/SETITEMS batch, or in
    /// the tuple.
    count: usize,
    /// The length a tuple declared.
    tuple_len: usize,
    /// Whether this is the value of `{variant: value}`, to be closed by
    /// SETITEM.
    variant: bool,
}

impl<'a> Compound<'a> {
    fn new(pickler: &'a mut Pickler, variant: bool) -> Self {
        Compound { pickler, count: 0, tuple_len: 0, variant }
    }

    fn list_item<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), PickleError> {
        if self.count == 0 {
            self.pickler.op(MARK);
        }
        value.serialize(&mut *self.pickler)?;
        self.count += 1;
        if self.count == BATCH_SIZE {
            self.pickler.op(APPENDS);
            self.count = 0;
        }
        Ok(())
    }

    fn end_list(self) -> Result<(), PickleError> {
        if self.count > 0 {
            self.pickler.op(APPENDS);
        }
        self.end_variant()
    }

    fn dict_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), PickleError> {
        if self.count == 0 {
            self.pickler.op(MARK);
        }
        self.pickler.in_key += 1;
        let result = key.serialize(&mut *self.pickler);
        self.pickler.in_key -= 1;
        result
    }

    fn dict_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), PickleError> {
        value.serialize(&mut *self.pickler)?;
        self.count += 1;
        if self.count == BATCH_SIZE {
            self.pickler.op(SETITEMS);
            self.count = 0;
        }
        Ok(())
    }

    fn end_dict(self) -> Result<(), PickleError> {
        if self.count > 0 {
            self.pickler.op(SETITEMS);
        }
        self.end_variant()
    }

    fn begin_tuple(pickler: &'a mut Pickler, len: usize, variant: bool) -> Self {
        if len > 3 {
            pickler.op(MARK);
        }
        Compound { pickler, count: 0, tuple_len: len, variant }
    }

    fn tuple_item<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), PickleError> {
        value.serialize(&mut *self.pickler)?;
        self.count += 1;
        Ok(())
    }

    fn end_tuple(self) -> Result<(), PickleError> {
        if self.count != self.tuple_len {
            return Err(PickleError::new(format!(
                "a tuple declared {} items but serialized {}",
                self.tuple_len, self.count
            )));
        }
        let opcode = match self.count {
            0 => EMPTY_TUPLE,
            1 => TUPLE1,
            2 => TUPLE2,
            3 => TUPLE3,
            _ => TUPLE,
        };
        self.pickler.op(opcode);
        self.end_variant()
    }

    fn end_variant(self) -> Result<(), PickleError> {
        if self.variant {
            self.pickler.op(SETITEM);
        }
        Ok(())
    }
}

impl<'a> ser::Serializer for &'a mut Pickler {
    type Ok = ();
    type Error = PickleError;
    type SerializeSeq = Compound<'a>;
    type SerializeTuple = Compound<'a>;
    type SerializeTupleStruct = Compound<'a>;
    type SerializeTupleVariant = Compound<'a>;
    type SerializeMap = Compound<'a>;
    type SerializeStruct = Compound<'a>;
    type SerializeStructVariant = Compound<'a>;

    fn serialize_bool(self, v: bool) -> Result<(), PickleError> {
        self.op(if v { NEWTRUE } else { NEWFALSE });
        Ok(())
    }

    serialize_integer! {
        serialize_i8: i8,
        serialize_i16: i16,
        serialize_i32: i32,
        serialize_i64: i64,
        serialize_i128: i128,
        serialize_u8: u8,
        serialize_u16: u16,
        serialize_u32: u32,
        serialize_u64: u64,
    }

    fn serialize_u128(self, v: u128) -> Result<(), PickleError> {
        self.uint(v);
        Ok(())
    }

    fn serialize_f32(self, v: f32) -> Result<(), PickleError> {
        self.serialize_f64(v.into())
    }

    fn serialize_f64(self, v: f64) -> Result<(), PickleError> {
        self.op_with(BINFLOAT, &v.to_be_bytes());
        Ok(())
    }

    fn serialize_char(self, v: char) -> Result<(), PickleError> {
        self.str(v.encode_utf8(&mut [0; 4]))
    }

    fn serialize_str(self, v: &str) -> Result<(), PickleError> {
        self.str(v)
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<(), PickleError> {
        self.bytes(v)
    }

    fn serialize_none(self) -> Result<(), PickleError> {
        self.op(NONE);
        Ok(())
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), PickleError> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), PickleError> {
        self.op(NONE);
        Ok(())
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), PickleError> {
        self.serialize_unit()
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), PickleError> {
        self.str(variant)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), PickleError> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), PickleError> {
        self.begin_variant(variant)?;
        value.serialize(&mut *self)?;
        self.op(SETITEM);
        Ok(())
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<Compound<'a>, PickleError> {
        self.hashable("list")?;
        self.op(EMPTY_LIST);
        Ok(Compound::new(self, false))
    }

    fn serialize_tuple(self, len: usize) -> Result<Compound<'a>, PickleError> {
        Ok(Compound::begin_tuple(self, len, false))
    }

    fn serialize_tuple_struct(self, _name: &'static str, len: usize) -> Result<Compound<'a>, PickleError> {
        self.serialize_tuple(len)
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Compound<'a>, PickleError> {
        self.begin_variant(variant)?;
        Ok(Compound::begin_tuple(self, len, true))
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Compound<'a>, PickleError> {
        self.hashable("dict")?;
        self.op(EMPTY_DICT);
        Ok(Compound::new(self, false))
    }

    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Compound<'a>, PickleError> {
        self.hashable("dict (a struct)")?;
        self.op(EMPTY_DICT);
        Ok(Compound::new(self, false))
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'a>, PickleError> {
        self.begin_variant(variant)?;
        self.op(EMPTY_DICT);
        Ok(Compound::new(self, true))
    }

    fn is_human_readable(&self) -> bool {
        true
    }
}

impl ser::SerializeSeq for Compound<'_> {
    type Ok = ();
    type Error = PickleError;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), PickleError> {
        self.list_item(value)
    }

    fn end(self) -> Result<(), PickleError> {
        self.end_list()
    }
}

impl ser::SerializeTuple for Compound<'_> {
    type Ok = ();
    type Error = PickleError;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), PickleError> {
        self.tuple_item(value)
    }

    fn end(self) -> Result<(), PickleError> {
        self.end_tuple()
    }
}

impl ser::SerializeTupleStruct for Compound<'_> {
    type Ok = ();
    type Error = PickleError;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), PickleError> {
        self.tuple_item(value)
    }

    fn end(self) -> Result<(), PickleError> {
        self.end_tuple()
    }
}

impl ser::SerializeTupleVariant for Compound<'_> {
    type Ok = ();
    type Error = PickleError;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), PickleError> {
        self.tuple_item(value)
    }

    fn end(self) -> Result<(), PickleError> {
        self.end_tuple()
    }
}

impl ser::SerializeMap for Compound<'_> {
    type Ok = ();
    type Error = PickleError;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), PickleError> {
        self.dict_key(key)
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), PickleError> {
        self.dict_value(value)
    }

    fn end(self) -> Result<(), PickleError> {
        self.end_dict()
    }
}

impl ser::SerializeStruct for Compound<'_> {
    type Ok = ();
    type Error = PickleError;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), PickleError> {
        self.dict_key(key)?;
        self.dict_value(value)
    }

    fn end(self) -> Result<(), PickleError> {
        self.end_dict()
    }
}

impl ser::SerializeStructVariant for Compound<'_> {
    type Ok = ();
    type Error = PickleError;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), PickleError> {
        self.dict_key(key)?;
        self.dict_value(value)
    }

    fn end(self) -> Result<(), PickleError> {
        self.end_dict()
    }
}
