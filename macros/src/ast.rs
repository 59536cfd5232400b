//! The parsed inputs of `#[remote]` and `#[managed]`.

use proc_macro2::TokenStream;
use syn::{Attribute, Item, ItemFn, ReturnType, Type};

/// A fn under `#[remote]`, with its arguments split out.
pub(crate) struct RemoteFn {
    pub(crate) item: ItemFn,
    pub(crate) args: Vec<Arg>,
}

/// One typed argument. A receiver (`self`) is not one; `check` reports it.
pub(crate) struct Arg {
    pub(crate) ty: Box<Type>,
}

/// What `#[remote]` was put on.
pub(crate) enum Input {
    Fn(RemoteFn),
    /// Anything else, kept as tokens so it can be emitted unchanged.
    Other(Item),
    /// Not even an item.
    Unparsed(TokenStream),
}

impl Input {
    pub(crate) fn parse(tokens: TokenStream) -> Input {
        match syn::parse2::<Item>(tokens.clone()) {
            Ok(Item::Fn(item)) => {
                let args = item
                    .sig
                    .inputs
                    .iter()
                    .filter_map(|input| match input {
                        syn::FnArg::Typed(t) => Some(Arg { ty: t.ty.clone() }),
                        syn::FnArg::Receiver(_) => None,
                    })
                    .collect();
                Input::Fn(RemoteFn { item, args })
            }
            Ok(other) => Input::Other(other),
            Err(_) => Input::Unparsed(tokens),
        }
    }
}

impl RemoteFn {
    /// The declared return type; `()` when there is none.
    pub(crate) fn output(&self) -> Type {
        match &self.item.sig.output {
            ReturnType::Default => syn::parse_quote!(()),
            ReturnType::Type(_, ty) => (**ty).clone(),
        }
    }

    /// Attributes that document the fn (they go on the generated struct).
    pub(crate) fn doc_attrs(&self) -> impl Iterator<Item = &Attribute> {
        self.item.attrs.iter().filter(|a| a.path().is_ident("doc"))
    }

    /// `#[cfg]` and `#[cfg_attr]`: they go on everything generated.
    pub(crate) fn cfg_attrs(&self) -> impl Iterator<Item = &Attribute> {
        self.item.attrs.iter().filter(|a| a.path().is_ident("cfg") || a.path().is_ident("cfg_attr"))
    }
}

/// The input of `#[managed]`: an `impl` block and its methods (the fns
/// with a receiver; associated fns without one are left alone).
pub(crate) struct ManagedImpl {
    pub(crate) item: syn::ItemImpl,
    pub(crate) methods: Vec<ManagedMethod>,
}

/// A method of a `#[managed]` block.
pub(crate) struct ManagedMethod {
    pub(crate) item: syn::ImplItemFn,
    /// Each typed argument: the name the proxy's method gives it (the
    /// user's, where it is a plain name) and its type.
    pub(crate) args: Vec<(syn::Ident, Type)>,
}

impl ManagedImpl {
    pub(crate) fn parse(tokens: TokenStream) -> syn::Result<ManagedImpl> {
        let item: syn::ItemImpl = syn::parse2(tokens)?;
        let methods = item
            .items
            .iter()
            .filter_map(|i| match i {
                syn::ImplItem::Fn(f) if f.sig.receiver().is_some() => Some(ManagedMethod::new(f.clone())),
                _ => None,
            })
            .collect();
        Ok(ManagedImpl { item, methods })
    }

    /// The type's name, if the block is on a named type.
    pub(crate) fn ident(&self) -> Option<&syn::Ident> {
        match &*self.item.self_ty {
            Type::Path(p) if p.qself.is_none() => p.path.segments.last().map(|s| &s.ident),
            _ => None,
        }
    }
}

impl ManagedMethod {
    fn new(item: syn::ImplItemFn) -> ManagedMethod {
        let args = item
            .sig
            .inputs
            .iter()
            .enumerate()
            .filter_map(|(i, input)| match input {
                syn::FnArg::Typed(arg) => {
                    let name = match &*arg.pat {
                        syn::Pat::Ident(p) => p.ident.clone(),
                        _ => quote::format_ident!("__multiproc_arg{}", i),
                    };
                    Some((name, (*arg.ty).clone()))
                }
                syn::FnArg::Receiver(_) => None,
            })
            .collect();
        ManagedMethod { item, args }
    }

    /// Whether it takes `&mut self` (and so runs alone).
    pub(crate) fn mutates(&self) -> bool {
        self.item.sig.receiver().is_some_and(|r| r.mutability.is_some())
    }

    /// The declared return type; `()` when there is none.
    pub(crate) fn output(&self) -> Type {
        match &self.item.sig.output {
            ReturnType::Default => syn::parse_quote!(()),
            ReturnType::Type(_, ty) => (**ty).clone(),
        }
    }

    /// `#[cfg]` and `#[cfg_attr]`: they go on everything generated for it.
    pub(crate) fn cfg_attrs(&self) -> impl Iterator<Item = &Attribute> {
        self.item.attrs.iter().filter(|a| a.path().is_ident("cfg") || a.path().is_ident("cfg_attr"))
    }

    /// Attributes that document it (they go on the proxy's method).
    pub(crate) fn doc_attrs(&self) -> impl Iterator<Item = &Attribute> {
        self.item.attrs.iter().filter(|a| a.path().is_ident("doc"))
    }
}
