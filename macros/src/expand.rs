//! The code `#[remote]` generates.
//!
//! For `fn square(x: u64) -> u64`, a unit struct `square` (so the name is a
//! value, of a type that implements `Remote`), with the user's fn moved
//! inside an anonymous const block under its own name, a `Deref` to the fn
//! pointer so `square(3)` still works, and an `inventory` registration.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::spanned::Spanned;

use crate::ast::{Input, RemoteFn};
use crate::check::{self, Errors};

pub(crate) fn remote(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    if !args.is_empty() {
        errors.push(args.span(), "#[remote] takes no arguments; write `#[remote]`");
    }
    match Input::parse(item) {
        Input::Fn(f) => {
            check::check(&f, &mut errors);
            match errors.into_result() {
                Ok(()) => expand(&f),
                // Emit the fn unchanged beside the errors, so that its
                // callers do not add errors of their own.
                Err(e) => {
                    let error = e.to_compile_error();
                    let item = &f.item;
                    quote!(#error #item)
                }
            }
        }
        Input::Other(item) => {
            check::not_a_fn(&item, &mut errors);
            let error = errors.into_result().expect_err("not_a_fn reports").to_compile_error();
            quote!(#error #item)
        }
        Input::Unparsed(tokens) => {
            let error = syn::Error::new(Span::call_site(), "#[remote] can only be applied to a free `fn`");
            let error = error.to_compile_error();
            quote!(#error #tokens)
        }
    }
}

fn expand(f: &RemoteFn) -> TokenStream {
    let item = &f.item;
    let vis = &item.vis;
    let name = &item.sig.ident;
    let name_str = name.to_string();
    let docs: Vec<_> = f.doc_attrs().collect();
    let cfgs: Vec<_> = f.cfg_attrs().collect();
    let inner_attrs = item.attrs.iter().filter(|a| !a.path().is_ident("doc"));
    let sig = &item.sig;
    let block = &item.block;
    let arg_types: Vec<_> = f.args.iter().map(|a| &a.ty).collect();
    let arg_names: Vec<_> = (0..f.args.len()).map(|i| format_ident!("__multiproc_arg{}", i)).collect();
    let arg_params: Vec<_> = (0..f.args.len()).map(|i| format_ident!("__A{}", i)).collect();
    let output = f.output();
    let fn_ptr = quote!(fn(#(#arg_types),*) -> #output);
    let remote_name = quote!(::core::concat!(::core::module_path!(), "::", #name_str));

    quote! {
        #(#cfgs)*
        #(#docs)*
        #[allow(non_camel_case_types)]
        #[derive(::core::clone::Clone, ::core::marker::Copy)]
        #vis struct #name;

        #(#cfgs)*
        const _: () = {
            #(#inner_attrs)*
            #sig #block

            impl ::core::fmt::Debug for #name {
                fn fmt(&self, __multiproc_f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                    __multiproc_f.write_str(#remote_name)
                }
            }

            impl ::core::ops::Deref for #name {
                type Target = #fn_ptr;
                fn deref(&self) -> &Self::Target {
                    static TARGET: #fn_ptr = #name;
                    &TARGET
                }
            }

            // The bounds hold exactly when the types can travel. When one
            // cannot, the registration below reports it, once, on that type.
            // Here it is only assumed: a bound with no generic parameter is
            // checked where it is written, but not under `for<'_>`, and the
            // bounds on `Args` and `Output` then follow from it instead of
            // failing again.
            impl ::multiproc::Remote for #name
            where
                #(for<'__multiproc> #arg_types: ::multiproc::__private::RemoteArg,)*
                for<'__multiproc> #output: ::multiproc::__private::RemoteReturn,
            {
                type Args = (#(#arg_types,)*);
                type Output = #output;
                const NAME: &'static str = #remote_name;
                fn call(&self, (#(#arg_names,)*): Self::Args) -> Self::Output {
                    #name(#(#arg_names),*)
                }
            }

            // Generic over each type, so that each is checked on its own and
            // reported once, on its own span.
            fn __multiproc_invoke<
                #(#arg_params: ::multiproc::__private::RemoteArg,)*
                __R: ::multiproc::__private::RemoteReturn,
            >(
                __multiproc_fn: fn(#(#arg_params),*) -> __R,
                __multiproc_input: ::multiproc::__private::Input,
            ) -> ::multiproc::Result<::multiproc::__private::Encoded> {
                ::multiproc::__private::invoke(
                    #remote_name,
                    __multiproc_input,
                    |(#(#arg_names,)*): (#(#arg_params,)*)| __multiproc_fn(#(#arg_names),*),
                )
            }

            ::multiproc::__private::inventory::submit! {
                ::multiproc::__private::Registration {
                    name: #remote_name,
                    file: ::core::file!(),
                    line: ::core::line!(),
                    invoke: |__multiproc_input| {
                        __multiproc_invoke::<#(#arg_types,)* #output>(#name, __multiproc_input)
                    },
                }
            }
        };
    }
}
