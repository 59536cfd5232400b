//! The parsed input of `#[remote]`.

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
