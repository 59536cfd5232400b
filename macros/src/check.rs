//! The rules a `#[remote]` fn must follow, one fn per rule. Every error is
//! spanned on the smallest wrong token and says what to do instead; all of
//! them are reported at once.

use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::visit::Visit;
use syn::{FnArg, Item, Signature, Type};

use crate::ast::{ManagedImpl, RemoteFn};

/// Errors gathered while checking, reported together.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub(crate) fn push(&mut self, span: Span, message: impl std::fmt::Display) {
        self.add(syn::Error::new(span, message));
    }

    /// Like `push`, spanned from the first token of `tokens` to the last.
    pub(crate) fn push_spanned(&mut self, tokens: impl quote::ToTokens, message: impl std::fmt::Display) {
        self.add(syn::Error::new_spanned(tokens, message));
    }

    fn add(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    pub(crate) fn into_result(self) -> Result<(), syn::Error> {
        self.0.map_or(Ok(()), Err)
    }
}

pub(crate) fn check(f: &RemoteFn, errors: &mut Errors) {
    let sig = &f.item.sig;
    no_async(sig, REMOTE, errors);
    no_unsafe(sig, REMOTE, errors);
    no_abi(sig, REMOTE, errors);
    no_generics(sig, REMOTE, errors);
    no_variadic(sig, errors);
    at_most_16_arguments(sig, REMOTE, errors);
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(receiver) => no_self(receiver.self_token.span, errors),
            FnArg::Typed(arg) => owned_type(&arg.ty, REMOTE, "argument", errors),
        }
    }
    if let syn::ReturnType::Type(_, ty) = &sig.output {
        owned_type(ty, REMOTE, "return type", errors);
    }
}

/// `#[remote]` on something that is not a fn.
pub(crate) fn not_a_fn(item: &Item, errors: &mut Errors) {
    let span = match item {
        Item::Struct(i) => i.struct_token.span,
        Item::Enum(i) => i.enum_token.span,
        Item::Impl(i) => i.impl_token.span,
        Item::Trait(i) => i.trait_token.span,
        Item::Mod(i) => i.mod_token.span,
        Item::Const(i) => i.const_token.span,
        Item::Static(i) => i.static_token.span,
        Item::Type(i) => i.type_token.span,
        Item::Use(i) => i.use_token.span,
        other => other.span(),
    };
    errors.push(span, "#[remote] can only be applied to a free `fn`; put the work in a fn and annotate that");
}

// The fn runs to completion in another process; there is no executor to
// drive a future there, and a future cannot be sent back.
fn no_async(sig: &Signature, who: &str, errors: &mut Errors) {
    if let Some(token) = &sig.asyncness {
        errors.push(
            token.span,
            format!(
                "{who} cannot be `async`; make it a plain fn (it runs in another process, \
                 so it may block) and start a runtime inside it if it needs one"
            ),
        );
    }
}

// What calls it (`Remote::call`, a proxy's method) is safe to call, so the
// fn behind it must be too.
fn no_unsafe(sig: &Signature, who: &str, errors: &mut Errors) {
    if let Some(token) = &sig.unsafety {
        errors.push(
            token.span,
            format!("{who} cannot be `unsafe`; make it safe and put the `unsafe` block inside it"),
        );
    }
}

// The generated code calls it as a Rust fn.
fn no_abi(sig: &Signature, who: &str, errors: &mut Errors) {
    if let Some(abi) = &sig.abi {
        errors.push(abi.span(), format!("{who} cannot have an `extern` ABI; remove it"));
    }
}

// Another process finds the fn by name, and one name must mean one
// concrete fn: there is no way to say which instantiation it should run.
// Lifetime parameters are left to `owned_type`, which reports each use of
// one on the borrow itself.
fn no_generics(sig: &Signature, who: &str, errors: &mut Errors) {
    let generics = &sig.generics;
    if generics.type_params().next().is_some() || generics.const_params().next().is_some() {
        errors.push_spanned(generics, format!("{who} cannot be generic; write one per concrete type"));
    } else if let Some(where_clause) = &generics.where_clause {
        errors.push(
            where_clause.where_token.span,
            format!("{who} cannot have a `where` clause; write it for concrete types"),
        );
    }
}

// Only a foreign C fn can be variadic, and there is no tuple type for the
// arguments it may be given.
fn no_variadic(sig: &Signature, errors: &mut Errors) {
    if let Some(variadic) = &sig.variadic {
        errors.push(variadic.span(), "a #[remote] fn cannot be variadic");
    }
}

// The arguments travel as one tuple, and serde implements its traits for
// tuples of at most 16.
fn at_most_16_arguments(sig: &Signature, who: &str, errors: &mut Errors) {
    if let Some(input) = sig.inputs.iter().filter(|i| matches!(i, FnArg::Typed(_))).nth(16) {
        errors.push_spanned(
            input,
            format!(
                "{who} takes at most 16 arguments; gather the rest in a struct that derives \
                 `serde::Serialize` and `serde::Deserialize`"
            ),
        );
    }
}

// There is no `self` in the child to call a method on.
fn no_self(span: Span, errors: &mut Errors) {
    errors.push(
        span,
        "a #[remote] fn cannot take `self`; make it a free fn that takes the value as an argument",
    );
}

/// What the messages call a `#[remote]` fn.
const REMOTE: &str = "a #[remote] fn";

// Arguments and results are copied into another process's memory: they
// must be owned, concrete values. `who` is what has them, as the messages
// say it ("a #[remote] fn").
fn owned_type(ty: &Type, who: &str, what: &str, errors: &mut Errors) {
    struct Finder<'a> {
        who: &'a str,
        what: &'a str,
        errors: &'a mut Errors,
    }
    impl<'ast> Visit<'ast> for Finder<'_> {
        fn visit_type_reference(&mut self, r: &'ast syn::TypeReference) {
            let owned = match &*r.elem {
                Type::Path(p) if p.path.is_ident("str") => "`String`".to_owned(),
                Type::Slice(s) => format!("`Vec<{}>`", quote::ToTokens::to_token_stream(&s.elem)),
                other => format!("`{}`", quote::ToTokens::to_token_stream(other)),
            };
            self.errors.push(
                r.and_token.span,
                format!(
                    "{} cannot have a borrowed {}: the value is copied into another \
                     process, so it must be owned; use {owned} instead",
                    self.who, self.what
                ),
            );
        }
        fn visit_type_impl_trait(&mut self, t: &'ast syn::TypeImplTrait) {
            self.errors.push(
                t.impl_token.span,
                format!(
                    "{} cannot have an `impl Trait` {}: the process that receives \
                     it needs one concrete type to decode; name the type",
                    self.who, self.what
                ),
            );
        }
        fn visit_lifetime(&mut self, l: &'ast syn::Lifetime) {
            if l.ident != "static" {
                self.errors.push_spanned(
                    l,
                    format!(
                        "{} cannot have a borrowed {}: the value is copied into \
                         another process, so it must own its data; use an owned type, or \
                         `'static` instead of `{}`",
                        self.who, self.what, l
                    ),
                );
            }
        }
    }
    Finder { who, what, errors }.visit_type(ty);
}

/// What the messages call a method of a `#[managed]` type.
const MANAGED: &str = "a #[managed] method";

/// The rules of `#[managed]`: on the inherent, non-generic `impl` block of
/// a named type; each method takes `&self` or `&mut self` and passes the
/// rules of a `#[remote]` fn that apply to methods.
pub(crate) fn check_managed(m: &ManagedImpl, errors: &mut Errors) {
    let block = &m.item;
    // The manager calls the type's methods by name; a trait impl's
    // methods are the trait's, called through it.
    if let Some((_, path, _)) = &block.trait_ {
        errors.push_spanned(
            path,
            "#[managed] goes on the type's own `impl` block, not on a trait impl; the manager calls \
             its methods by name",
        );
        // Its methods are the trait's: the rules below do not apply.
        return;
    }
    // The manager finds the type by name, and one name must be one type.
    let generic = !block.generics.params.is_empty() || block.generics.where_clause.is_some();
    if generic {
        errors.push_spanned(
            &block.generics,
            "a #[managed] type cannot be generic: the manager finds it by name, and one name must be \
             one type; write it for a concrete type",
        );
    }
    if let Some(token) = &block.unsafety {
        errors.push(token.span, "#[managed] cannot go on an `unsafe impl`");
    }
    match &*block.self_ty {
        Type::Path(p) if p.qself.is_none() => {
            // (Reported once: generic arguments of a generic block are its
            // parameters.)
            if let Some(last) = p.path.segments.last()
                && !last.arguments.is_empty()
                && !generic
            {
                errors.push_spanned(
                    &last.arguments,
                    "a #[managed] type cannot have generic arguments; write the impl for a type of its own",
                );
            }
        }
        other => errors.push_spanned(other, "#[managed] goes on the `impl` block of a named struct or enum"),
    }
    for method in &m.methods {
        let sig = &method.item.sig;
        by_reference(sig, errors);
        not_named_clone(sig, errors);
        no_async(sig, MANAGED, errors);
        no_unsafe(sig, MANAGED, errors);
        no_abi(sig, MANAGED, errors);
        no_generics(sig, MANAGED, errors);
        at_most_16_arguments(sig, MANAGED, errors);
        for (_, ty) in &method.args {
            owned_type(ty, MANAGED, "argument", errors);
        }
        if let syn::ReturnType::Type(_, ty) = &sig.output {
            owned_type(ty, MANAGED, "return type", errors);
        }
    }
}

// The value stays in the manager: a method that takes it by value would
// take it away from there.
fn by_reference(sig: &Signature, errors: &mut Errors) {
    if let Some(receiver) = sig.receiver()
        && (receiver.reference.is_none() || receiver.colon_token.is_some())
    {
        errors.push_spanned(
            receiver,
            "a #[managed] method takes `&self` or `&mut self`: the value stays in the manager, and \
             the method runs on it there",
        );
    }
}

// The proxy's own `clone` makes another proxy of the same object; a method
// of that name would hide it.
fn not_named_clone(sig: &Signature, errors: &mut Errors) {
    if sig.ident == "clone" {
        errors.push_spanned(
            &sig.ident,
            "a #[managed] method cannot be named `clone`: the proxy's `clone` makes another proxy \
             of the same object; name it otherwise",
        );
    }
}
