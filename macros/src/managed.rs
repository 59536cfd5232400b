//! `#[managed]`: on an inherent `impl` block, registers the type with the
//! managers' servers, dispatches its `&self` and `&mut self` methods by
//! name, and generates its proxy (`CounterProxy` for `Counter`) with the
//! same methods returning `multiproc::Result`.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::spanned::Spanned;
use syn::visit_mut::VisitMut;
use syn::{FnArg, ImplItem, ImplItemFn, ItemImpl, Pat, ReturnType, Type};

use crate::check::{Errors, owned_type};

const WHO: &str = "a #[managed] method";

/// One method the proxy exposes.
struct Method<'a> {
    item: &'a ImplItemFn,
    mutates: bool,
    args: Vec<(syn::Ident, Type)>,
    output: Type,
}

pub(crate) fn managed(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    if !args.is_empty() {
        errors.push(args.span(), "#[managed] takes no arguments; write `#[managed]`");
    }
    let block = match syn::parse2::<ItemImpl>(item.clone()) {
        Ok(block) => block,
        Err(_) => {
            let error = syn::Error::new(
                Span::call_site(),
                "#[managed] goes on the inherent `impl` block of a type, whose methods the manager runs",
            );
            let error = error.to_compile_error();
            return quote!(#error #item);
        }
    };
    let ty = check_block(&block, &mut errors);
    let methods: Vec<Method<'_>> =
        block.items.iter().filter_map(|i| method(i, &block.self_ty, &mut errors)).collect();
    match (errors.into_result(), ty) {
        (Ok(()), Some(ty)) => expand(&block, &ty, &methods),
        (Err(e), _) => {
            let error = e.to_compile_error();
            quote!(#error #block)
        }
        (Ok(()), None) => unreachable!("check_block reports"),
    }
}

/// The block must be inherent, not generic, on a named type; its name.
fn check_block(block: &ItemImpl, errors: &mut Errors) -> Option<syn::Ident> {
    if let Some((_, path, _)) = &block.trait_ {
        errors.push_spanned(
            path,
            "#[managed] goes on the type's own `impl` block, not on a trait impl; the manager \
             calls its methods by name",
        );
    }
    if !block.generics.params.is_empty() || block.generics.where_clause.is_some() {
        errors.push_spanned(
            &block.generics,
            "a #[managed] type cannot be generic: the manager finds it by name, and one name must \
             be one type; write it for a concrete type",
        );
    }
    if let Some(token) = &block.unsafety {
        errors.push(token.span, "#[managed] cannot go on an `unsafe impl`");
    }
    let ident = match &*block.self_ty {
        Type::Path(p) if p.qself.is_none() => {
            let last = p.path.segments.last()?;
            if !last.arguments.is_empty() {
                errors.push_spanned(
                    &last.arguments,
                    "a #[managed] type cannot have generic arguments; write the impl for a \
                     type of its own",
                );
            }
            Some(last.ident.clone())
        }
        other => {
            errors.push_spanned(other, "#[managed] goes on the `impl` block of a named struct or enum");
            None
        }
    };
    if ident.is_none() {
        errors.push_spanned(&block.self_ty, "#[managed] needs a named type");
    }
    ident
}

/// The method `item` exposes, if it is a method (a fn with a receiver).
fn method<'a>(item: &'a ImplItem, self_ty: &Type, errors: &mut Errors) -> Option<Method<'a>> {
    let ImplItem::Fn(f) = item else { return None };
    let sig = &f.sig;
    let receiver = sig.receiver()?;
    let mutates = match (&receiver.reference, receiver.colon_token) {
        (Some(_), None) => receiver.mutability.is_some(),
        _ => {
            errors.push_spanned(
                receiver,
                "a #[managed] method takes `&self` or `&mut self`: the value stays in the \
                 manager, and the method runs on it there",
            );
            false
        }
    };
    if let Some(token) = &sig.asyncness {
        errors.push(token.span, "a #[managed] method cannot be `async`; the manager runs it to the end");
    }
    if let Some(token) = &sig.unsafety {
        errors.push(token.span, "a #[managed] method cannot be `unsafe`: any process may call it");
    }
    if sig.generics.type_params().next().is_some() || sig.generics.const_params().next().is_some() {
        errors.push_spanned(
            &sig.generics,
            "a #[managed] method cannot be generic: the manager runs one concrete method per \
             name; write one method per type",
        );
    }
    if sig.inputs.len() > 17 {
        errors.push_spanned(&sig.inputs, "a #[managed] method takes at most 16 arguments");
    }
    let mut args = Vec::new();
    for (i, input) in sig.inputs.iter().enumerate() {
        let FnArg::Typed(arg) = input else { continue };
        owned_type(&arg.ty, WHO, "argument", errors);
        let name = match &*arg.pat {
            Pat::Ident(p) if p.ident != "self" => format_ident!("{}", p.ident),
            _ => format_ident!("__multiproc_arg{}", i),
        };
        args.push((name, with_self(&arg.ty, self_ty)));
    }
    let output = match &sig.output {
        ReturnType::Default => syn::parse_quote!(()),
        ReturnType::Type(_, ty) => {
            owned_type(ty, WHO, "return type", errors);
            with_self(ty, self_ty)
        }
    };
    Some(Method { item: f, mutates, args, output })
}

/// `ty` with `Self` spelled out: the proxy's methods are in another impl.
fn with_self(ty: &Type, self_ty: &Type) -> Type {
    struct Replace<'a>(&'a Type);
    impl VisitMut for Replace<'_> {
        fn visit_type_mut(&mut self, ty: &mut Type) {
            if let Type::Path(p) = ty
                && p.qself.is_none()
                && p.path.is_ident("Self")
            {
                *ty = self.0.clone();
                return;
            }
            syn::visit_mut::visit_type_mut(self, ty);
        }
    }
    let mut ty = ty.clone();
    Replace(self_ty).visit_type_mut(&mut ty);
    ty
}

fn expand(block: &ItemImpl, ident: &syn::Ident, methods: &[Method<'_>]) -> TokenStream {
    let self_ty = &block.self_ty;
    let proxy = format_ident!("{}Proxy", ident);
    let private = quote!(::multiproc::__private);
    let typeid = quote!(::core::concat!(::core::module_path!(), "::", ::core::stringify!(#ident)));
    let proxy_doc = format!(
        "A proxy of a [`{ident}`] held by a [`Manager`](::multiproc::Manager): each method \
         runs in the manager, for whichever process holds the proxy. Generated by `#[managed]`."
    );

    let access = methods.iter().map(|m| {
        let name = m.item.sig.ident.to_string();
        let mutates = m.mutates;
        quote!(#name => ::core::option::Option::Some(#mutates),)
    });
    // Each method runs through a fn generic over its argument and result
    // types, instantiated with the user's own type tokens: a type that
    // cannot travel is reported once, there, in words about the manager.
    let arms = |mutating: bool| {
        methods.iter().filter(move |m| m.mutates == mutating).map(|m| {
            let method = &m.item.sig.ident;
            let name = method.to_string();
            let names: Vec<_> = m.args.iter().map(|(n, _)| n).collect();
            let types: Vec<_> = m.args.iter().map(|(_, t)| t).collect();
            let params: Vec<_> = (0..m.args.len()).map(|i| format_ident!("__A{}", i)).collect();
            let output = &m.output;
            quote! {
                #name => {
                    fn __multiproc_run<#(#params: #private::ManagedArg,)* __R: #private::ManagedReturn>(
                        __multiproc_args: #private::Encoded,
                        __multiproc_f: impl ::core::ops::FnOnce(#(#params),*) -> __R,
                    ) -> ::multiproc::Result<#private::Encoded> {
                        #private::call_method(
                            __multiproc_args,
                            |(#(#names,)*): (#(#params,)*)| __multiproc_f(#(#names),*),
                        )
                    }
                    __multiproc_run::<#(#types,)* #output>(
                        __multiproc_args,
                        |#(#names),*| <#self_ty>::#method(self, #(#names),*),
                    )
                }
            }
        })
    };
    let shared_arms = arms(false);
    let mut_arms = arms(true);

    let proxy_methods = methods.iter().map(|m| {
        let method = &m.item.sig.ident;
        let name = method.to_string();
        let docs = m.item.attrs.iter().filter(|a| a.path().is_ident("doc"));
        let names: Vec<_> = m.args.iter().map(|(n, _)| n).collect();
        let types: Vec<_> = m.args.iter().map(|(_, t)| t).collect();
        let output = &m.output;
        // The bounds are only assumed here (a bound on a concrete type is
        // not checked under `for<'_>`): the dispatch above reports a type
        // that cannot travel, once.
        quote! {
            #(#docs)*
            ///
            /// # Errors
            ///
            /// [`Error::Closed`](::multiproc::Error::Closed) if the manager is gone;
            /// [`Error::Remote`](::multiproc::Error::Remote) if the method panicked in the
            /// manager; [`Error::Codec`](::multiproc::Error::Codec) if a value does not encode.
            #[allow(clippy::too_many_arguments)]
            pub fn #method(&self, #(#names: #types),*) -> ::multiproc::Result<#output>
            where
                #(for<'__multiproc> #types: #private::ManagedArg,)*
                for<'__multiproc> #output: #private::ManagedReturn,
            {
                #private::call_proxy(&self.object, #name, &(#(#names,)*))
            }
        }
    });

    quote! {
        #block

        #[doc = #proxy_doc]
        pub struct #proxy {
            object: #private::ObjectRef,
        }

        impl #proxy {
            #(#proxy_methods)*
        }

        const _: () = {
            impl ::core::clone::Clone for #proxy {
                fn clone(&self) -> Self {
                    #proxy { object: ::core::clone::Clone::clone(&self.object) }
                }
            }

            impl ::core::fmt::Debug for #proxy {
                fn fmt(&self, __multiproc_f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                    __multiproc_f.debug_tuple(::core::stringify!(#proxy)).field(&self.object).finish()
                }
            }

            impl #private::serde::Serialize for #proxy {
                fn serialize<__S: #private::serde::Serializer>(
                    &self,
                    __multiproc_s: __S,
                ) -> ::core::result::Result<__S::Ok, __S::Error> {
                    #private::serde::Serialize::serialize(&self.object, __multiproc_s)
                }
            }

            impl<'de> #private::serde::Deserialize<'de> for #proxy {
                fn deserialize<__D: #private::serde::Deserializer<'de>>(
                    __multiproc_d: __D,
                ) -> ::core::result::Result<Self, __D::Error> {
                    ::core::result::Result::Ok(#proxy {
                        object: <#private::ObjectRef as #private::serde::Deserialize>::deserialize(__multiproc_d)?,
                    })
                }
            }

            impl #private::ProxySeal for #proxy {
                const TYPEID: &'static str = #typeid;
                fn object(&self) -> &#private::ObjectRef {
                    &self.object
                }
                fn from_object(object: #private::ObjectRef) -> Self {
                    #proxy { object }
                }
            }

            impl ::multiproc::Proxy for #proxy {}

            impl ::multiproc::Managed for #self_ty {
                type Proxy = #proxy;
                const TYPEID: &'static str = #typeid;

                fn __access(__multiproc_method: &str) -> ::core::option::Option<bool> {
                    match __multiproc_method {
                        #(#access)*
                        _ => ::core::option::Option::None,
                    }
                }

                #[allow(unused_variables)]
                fn __call(
                    &self,
                    __multiproc_method: &str,
                    __multiproc_args: #private::Encoded,
                ) -> ::multiproc::Result<#private::Encoded> {
                    match __multiproc_method {
                        #(#shared_arms)*
                        _ => ::core::result::Result::Err(#private::unknown_method(#typeid, __multiproc_method)),
                    }
                }

                #[allow(unused_variables)]
                fn __call_mut(
                    &mut self,
                    __multiproc_method: &str,
                    __multiproc_args: #private::Encoded,
                ) -> ::multiproc::Result<#private::Encoded> {
                    match __multiproc_method {
                        #(#mut_arms)*
                        _ => ::core::result::Result::Err(#private::unknown_method(#typeid, __multiproc_method)),
                    }
                }
            }

            #private::inventory::submit! {
                #private::ManagedType { typeid: #typeid, make: #private::make_managed::<#self_ty> }
            }

        };
    }
}
