//! The expansion of both attributes, on `proc_macro2` tokens so that it can be unit-tested.

use proc_macro2::{Literal, TokenStream, TokenTree};
use quote::{quote, ToTokens};
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::{
    AttrStyle, Error, Expr, ExprLit, Ident, ItemFn, Lit, LitInt, LitStr, Path, ReturnType, Token,
    Type,
};

/// Which attribute is being expanded.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    Main,
    Test,
}

impl Kind {
    fn attr(self) -> &'static str {
        match self {
            Kind::Main => "#[magpie::main]",
            Kind::Test => "#[magpie::test]",
        }
    }
}

/// The options, in the order the error for an unknown one lists them.
const OPTIONS: &[&str] = &[
    "worker_threads",
    "thread_name",
    "max_blocking_threads",
    "global_queue_interval",
    "spin_before_park_us",
    "task_cache_bytes",
    "crate",
    "seeds",
];

/// One `key = value` of the attribute's arguments; the value is checked later, so that an
/// unknown key is reported before a missing or wrong value.
struct Opt {
    key: Ident,
    value: Option<Expr>,
}

impl Parse for Opt {
    fn parse(input: ParseStream<'_>) -> syn::Result<Opt> {
        // `parse_any`: `crate` is a keyword.
        let key = Ident::parse_any(input)?;
        let value = if input.peek(Token![=]) {
            input.parse::<Token![=]>()?;
            Some(input.parse()?)
        } else {
            None
        };
        Ok(Opt { key, value })
    }
}

/// The options given, checked.
#[derive(Default)]
struct Config {
    worker_threads: Option<Literal>,
    thread_name: Option<LitStr>,
    max_blocking_threads: Option<Literal>,
    global_queue_interval: Option<Literal>,
    /// Microseconds; 0 turns the spin off.
    spin_before_park_us: Option<Literal>,
    /// Bytes per worker; 0 turns the caches off.
    task_cache_bytes: Option<Literal>,
    krate: Option<Path>,
    /// `seeds = N`: the body runs in the deterministic runtime once per seed in `0..N`.
    seeds: Option<(Ident, Literal)>,
    /// The first runtime option given, for the error when `seeds` comes with it.
    runtime_option: Option<Ident>,
}

impl Config {
    fn parse(args: TokenStream) -> syn::Result<Config> {
        let opts = Punctuated::<Opt, Token![,]>::parse_terminated.parse2(args)?;
        let mut config = Config::default();
        let mut seen: Vec<String> = Vec::new();
        for opt in opts {
            let name = opt.key.unraw().to_string();
            if !OPTIONS.contains(&name.as_str()) {
                let known: Vec<String> = OPTIONS.iter().map(|o| format!("`{o}`")).collect();
                return Err(Error::new_spanned(
                    &opt.key,
                    format!(
                        "unknown option `{name}`; the options are {}",
                        known.join(", ")
                    ),
                ));
            }
            if seen.contains(&name) {
                return Err(Error::new_spanned(
                    &opt.key,
                    format!("`{name}` is given twice"),
                ));
            }
            seen.push(name.clone());
            let Some(value) = opt.value else {
                let example = if name == "thread_name" || name == "crate" {
                    "\"…\""
                } else {
                    "4"
                };
                return Err(Error::new_spanned(
                    &opt.key,
                    format!("`{name}` needs a value: `{name} = {example}`"),
                ));
            };
            if name != "crate" && name != "seeds" && config.runtime_option.is_none() {
                config.runtime_option = Some(opt.key.clone());
            }
            match name.as_str() {
                "seeds" => {
                    config.seeds = Some((
                        opt.key.clone(),
                        count(&name, &value, "u64", u64::MAX.into())?,
                    ))
                }
                "worker_threads" => config.worker_threads = Some(workers(&name, &value)?),
                "max_blocking_threads" => {
                    config.max_blocking_threads =
                        Some(count(&name, &value, "usize", usize::MAX as u128)?)
                }
                "global_queue_interval" => {
                    config.global_queue_interval =
                        Some(count(&name, &value, "u32", u32::MAX.into())?)
                }
                "spin_before_park_us" => {
                    config.spin_before_park_us =
                        Some(micros(&name, &value, MAX_SPIN_BEFORE_PARK_US)?)
                }
                "task_cache_bytes" => config.task_cache_bytes = Some(bytes(&name, &value)?),
                "thread_name" => {
                    let lit = string(&name, &value)?;
                    // No OS thread name holds one (and std's thread builder panics on it).
                    if lit.value().contains('\0') {
                        return Err(Error::new_spanned(
                            &lit,
                            "`thread_name` must not contain a NUL byte",
                        ));
                    }
                    config.thread_name = Some(lit);
                }
                "crate" => {
                    let lit = string(&name, &value)?;
                    let path = lit.parse_with(Path::parse_mod_style).map_err(|_| {
                        Error::new_spanned(
                            &lit,
                            format!(
                                "`crate` must be a path, e.g. `crate = \"::magpie\"`, not \"{}\"",
                                lit.value()
                            ),
                        )
                    })?;
                    config.krate = Some(path);
                }
                _ => unreachable!("every name in OPTIONS is matched"),
            }
        }
        Ok(config)
    }

    /// The facade's path: `::magpie`, or the `crate` option's.
    fn krate(&self) -> TokenStream {
        match &self.krate {
            Some(path) => path.to_token_stream(),
            None => quote!(::magpie),
        }
    }

    /// `seeds` goes on a `#[magpie::test]` returning `()`, without runtime options.
    fn check_seeds(&self, kind: Kind, item: &ItemFn) -> syn::Result<()> {
        let Some((key, _)) = &self.seeds else {
            return Ok(());
        };
        if kind == Kind::Main {
            return Err(Error::new_spanned(
                key,
                "`seeds` is an option of #[magpie::test] (the deterministic runtime is for tests)",
            ));
        }
        if let Some(option) = &self.runtime_option {
            return Err(Error::new_spanned(
                option,
                format!(
                    "`{}` configures the multi-threaded runtime, but `seeds` runs the test in the \
                     deterministic one (one thread): remove one of them",
                    option.unraw()
                ),
            ));
        }
        if let ReturnType::Type(_, ty) = &item.sig.output {
            if matches!(&**ty, Type::Tuple(unit) if unit.elems.is_empty()) {
                return Ok(());
            }
            return Err(Error::new_spanned(
                ty,
                "with `seeds` the body runs once per seed and must return `()`: unwrap or \
                 `expect` errors inside it",
            ));
        }
        Ok(())
    }

    /// `<crate>::Builder::new()` with the options set.
    fn builder(&self) -> TokenStream {
        let krate = self.krate();
        let mut builder = quote!(#krate::Builder::new());
        if let Some(n) = &self.worker_threads {
            builder.extend(quote!(.worker_threads(#n)));
        }
        if let Some(name) = &self.thread_name {
            builder.extend(quote!(.thread_name(#name)));
        }
        if let Some(n) = &self.max_blocking_threads {
            builder.extend(quote!(.max_blocking_threads(#n)));
        }
        if let Some(n) = &self.global_queue_interval {
            builder.extend(quote!(.global_queue_interval(#n)));
        }
        if let Some(us) = &self.spin_before_park_us {
            builder.extend(quote!(.spin_before_park(::std::time::Duration::from_micros(#us))));
        }
        if let Some(bytes) = &self.task_cache_bytes {
            builder.extend(quote!(.task_cache_bytes(#bytes)));
        }
        builder
    }
}

/// The integer literal `value` of option `name` and its value: `what` says what it counts in
/// the errors (a literal of another kind, a suffix other than `ty`).
fn int_literal<'a>(
    name: &str,
    value: &'a Expr,
    ty: &str,
    what: &str,
    example: u32,
) -> syn::Result<(&'a LitInt, u128)> {
    let lit: &LitInt = match value {
        Expr::Lit(ExprLit {
            lit: Lit::Int(lit), ..
        }) => lit,
        _ => {
            return Err(Error::new_spanned(
                value,
                format!("`{name}` must be an integer literal{what}, e.g. `{name} = {example}`"),
            ))
        }
    };
    if !lit.suffix().is_empty() && lit.suffix() != ty {
        return Err(Error::new_spanned(
            lit,
            format!(
                "`{name}` is a {ty}{what}: write `{name} = {}`",
                lit.base10_digits()
            ),
        ));
    }
    Ok((lit, lit.base10_parse().unwrap_or(u128::MAX)))
}

/// An integer literal from 1 to `max`, given back unsuffixed.
fn count(name: &str, value: &Expr, ty: &str, max: u128) -> syn::Result<Literal> {
    bounded(name, value, ty, "", 4, 1, max)
}

/// An integer literal from `min` (0 or 1) to `max`, given back unsuffixed; `what` and `example`
/// as for [`int_literal`].
fn bounded(
    name: &str,
    value: &Expr,
    ty: &str,
    what: &str,
    example: u32,
    min: u128,
    max: u128,
) -> syn::Result<Literal> {
    let (lit, n) = int_literal(name, value, ty, what, example)?;
    if n < min {
        return Err(Error::new_spanned(
            lit,
            format!("`{name}` must be at least {min}"),
        ));
    }
    if n > max {
        return Err(Error::new_spanned(
            lit,
            format!("`{name}` must fit in a {ty} (at most {max})"),
        ));
    }
    Ok(Literal::u128_unsuffixed(n))
}

/// `Builder::MAX_SPIN_BEFORE_PARK` (1 s) in microseconds: the macro refuses more at compile
/// time rather than leave it to `build` at run time.
const MAX_SPIN_BEFORE_PARK_US: u128 = 1_000_000;

/// A duration in microseconds: an integer literal from 0 to `max` (0 means "off"), given back
/// unsuffixed.
fn micros(name: &str, value: &Expr, max: u128) -> syn::Result<Literal> {
    let (lit, n) = int_literal(name, value, "u64", " of microseconds", 50)?;
    if n > max {
        return Err(Error::new_spanned(
            lit,
            format!("`{name}` must be at most {max} (one second)"),
        ));
    }
    Ok(Literal::u128_unsuffixed(n))
}

/// `Builder::MAX_WORKER_THREADS` (the executor's; repeated here, a proc-macro crate cannot
/// depend on it): what `build` would refuse at run time is refused at compile time.
const MAX_WORKER_THREADS: u128 = 32_768;

/// A worker count: an integer literal from 1 to [`MAX_WORKER_THREADS`], given back unsuffixed.
fn workers(name: &str, value: &Expr) -> syn::Result<Literal> {
    let (lit, n) = int_literal(name, value, "usize", "", 4)?;
    if n < 1 {
        return Err(Error::new_spanned(
            lit,
            format!("`{name}` must be at least 1"),
        ));
    }
    if n > MAX_WORKER_THREADS {
        return Err(Error::new_spanned(
            lit,
            format!(
                "`{name}` must be at most {MAX_WORKER_THREADS} (`Builder::MAX_WORKER_THREADS`)"
            ),
        ));
    }
    Ok(Literal::u128_unsuffixed(n))
}

/// A number of bytes: an integer literal from 0 that fits a `usize` (0 means "off"), given
/// back unsuffixed.
fn bytes(name: &str, value: &Expr) -> syn::Result<Literal> {
    bounded(
        name,
        value,
        "usize",
        " of bytes",
        1_048_576,
        0,
        usize::MAX as u128,
    )
}

/// A string literal.
fn string(name: &str, value: &Expr) -> syn::Result<LitStr> {
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Str(lit), ..
        }) => Ok(lit.clone()),
        _ => Err(Error::new_spanned(
            value,
            format!("`{name}` must be a string literal, e.g. `{name} = \"…\"`"),
        )),
    }
}

/// The checks on the annotated fn that both attributes share, and `#[magpie::test]`'s own.
fn check(kind: Kind, item: &ItemFn) -> syn::Result<()> {
    let attr = kind.attr();
    let sig = &item.sig;
    if sig.asyncness.is_none() {
        return Err(Error::new_spanned(
            sig.fn_token,
            format!("{attr} goes on an `async fn`: add `async` before `fn`"),
        ));
    }
    if !sig.inputs.is_empty() {
        return Err(Error::new_spanned(
            &sig.inputs,
            format!("{attr} takes an `async fn` with no arguments"),
        ));
    }
    if sig.variadic.is_some() {
        return Err(Error::new_spanned(
            &sig.variadic,
            format!("{attr} takes an `async fn` with no arguments"),
        ));
    }
    if !sig.generics.params.is_empty() {
        return Err(Error::new_spanned(
            &sig.generics,
            format!("{attr} cannot go on a generic fn"),
        ));
    }
    if let Some(where_clause) = &sig.generics.where_clause {
        return Err(Error::new_spanned(
            where_clause,
            format!("{attr} cannot go on a fn with a `where` clause"),
        ));
    }
    if kind == Kind::Test {
        let second = item.attrs.iter().find(|a| {
            a.path()
                .segments
                .last()
                .is_some_and(|segment| segment.ident == "test")
        });
        if let Some(second) = second {
            return Err(Error::new_spanned(
                second,
                "a second test attribute: #[magpie::test] already makes this fn a #[test]; \
                 remove this one",
            ));
        }
    }
    Ok(())
}

/// The expansion of `kind` with arguments `args` on `item`; on misuse, a `compile_error!`.
pub(crate) fn expand(kind: Kind, args: TokenStream, item: TokenStream) -> TokenStream {
    let func: ItemFn = match syn::parse2(item.clone()) {
        Ok(func) => func,
        Err(parse_error) => {
            // A fn whose tokens do not parse (a syntax error in its body, say) gets the
            // parser's own error, where it is; anything else is not a fn at all.
            let looks_like_a_fn = item
                .clone()
                .into_iter()
                .any(|token| matches!(&token, TokenTree::Ident(ident) if ident == "fn"));
            if !looks_like_a_fn {
                let err =
                    Error::new_spanned(&item, format!("{} goes on an `async fn`", kind.attr()));
                let mut out = err.to_compile_error();
                out.extend(item);
                return out;
            }
            // The fn goes back without its `async`, so that the parser's error is the only
            // one (not also "`main` is not allowed to be `async`").
            let mut out = parse_error.to_compile_error();
            out.extend(
                item.into_iter()
                    .filter(|token| !matches!(token, TokenTree::Ident(ident) if ident == "async")),
            );
            return out;
        }
    };
    let config = match check(kind, &func)
        .and_then(|()| Config::parse(args))
        .and_then(|config| config.check_seeds(kind, &func).map(|()| config))
    {
        Ok(config) => config,
        Err(err) => {
            let mut out = err.to_compile_error();
            out.extend(stand_in(&func));
            return out;
        }
    };
    generate(kind, &config, func)
}

/// What stands in for a misused fn beside the error: a sync fn of the same name and type that
/// is never run, so that the error is the only one (no "`main` function not found").
fn stand_in(func: &ItemFn) -> TokenStream {
    let vis = &func.vis;
    let ident = &func.sig.ident;
    let generics = &func.sig.generics;
    let where_clause = &func.sig.generics.where_clause;
    let output = &func.sig.output;
    quote! {
        #[allow(dead_code)]
        #vis fn #ident #generics () #output #where_clause {
            ::core::unreachable!()
        }
    }
}

fn generate(kind: Kind, config: &Config, func: ItemFn) -> TokenStream {
    let ItemFn {
        attrs,
        vis,
        mut sig,
        block,
    } = func;
    sig.asyncness = None;
    // syn puts the body's inner attributes (`#![allow(..)]`) with the fn's own; they go back
    // at the top of the generated body, the one place they may stand (and where they cover
    // the async block made of the user's body).
    let (inner, attrs): (Vec<_>, Vec<_>) = attrs
        .into_iter()
        .partition(|attr| matches!(attr.style, AttrStyle::Inner(_)));
    if let Some((_, seeds)) = &config.seeds {
        // Each seed runs the body anew in a deterministic runtime of its own.
        let krate = config.krate();
        return quote! {
            #[::core::prelude::v1::test]
            #(#attrs)*
            #vis #sig {
                #(#inner)*
                #krate::sim::check(0..#seeds, |_seed| async #block);
            }
        };
    }
    let builder = config.builder();
    let start = quote! {
        let runtime = #builder
            .build()
            .unwrap_or_else(|err| ::core::panic!("failed to start the magpie runtime: {err}"));
    };
    match kind {
        Kind::Main => quote! {
            #(#attrs)*
            #vis #sig {
                #(#inner)*
                let body = async #block;
                #start
                runtime.block_on(body)
            }
        },
        Kind::Test => {
            // The body's type is named (a pinned `dyn Future`), so `?` in it knows its error
            // type, and `block_on` is instantiated once per output type, not once per test.
            // An `impl Trait` in the output cannot be named there: such a body's type is left
            // to inference.
            let output = match &sig.output {
                ReturnType::Default => Some(quote!(())),
                ReturnType::Type(_, ty) if mentions_impl(ty.to_token_stream()) => None,
                ReturnType::Type(_, ty) => Some(ty.to_token_stream()),
            };
            let name_the_type = output.map(|output| {
                quote! {
                    let body: ::core::pin::Pin<
                        &mut dyn ::core::future::Future<Output = #output>,
                    > = body;
                }
            });
            quote! {
                #[::core::prelude::v1::test]
                #(#attrs)*
                #vis #sig {
                    #(#inner)*
                    let body = async #block;
                    let body = ::core::pin::pin!(body);
                    #name_the_type
                    #start
                    runtime.block_on(body)
                }
            }
        }
    }
}

/// Whether `tokens` hold the `impl` keyword (an `impl Trait` type, at any depth).
fn mentions_impl(tokens: TokenStream) -> bool {
    tokens.into_iter().any(|token| match token {
        TokenTree::Ident(ident) => ident == "impl",
        TokenTree::Group(group) => mentions_impl(group.stream()),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand_str(kind: Kind, args: TokenStream, item: TokenStream) -> String {
        expand(kind, args, item).to_string()
    }

    #[test]
    fn main_builds_through_the_facade_with_its_options() {
        let out = expand_str(
            Kind::Main,
            quote!(
                worker_threads = 2,
                thread_name = "api",
                max_blocking_threads = 8,
                global_queue_interval = 31,
                spin_before_park_us = 0,
                task_cache_bytes = 0
            ),
            quote!(
                async fn main() -> Result<(), String> {
                    Ok(())
                }
            ),
        );
        assert!(out.contains(":: magpie :: Builder :: new ()"), "{out}");
        assert!(out.contains(". worker_threads (2)"), "{out}");
        assert!(out.contains(". thread_name (\"api\")"), "{out}");
        assert!(out.contains(". max_blocking_threads (8)"), "{out}");
        assert!(out.contains(". global_queue_interval (31)"), "{out}");
        assert!(
            out.contains(". spin_before_park (:: std :: time :: Duration :: from_micros (0))"),
            "{out}"
        );
        assert!(out.contains(". task_cache_bytes (0)"), "{out}");
        assert!(
            out.contains("fn main () -> Result < () , String >"),
            "{out}"
        );
        assert!(!out.contains("async fn"), "{out}");
        assert!(!out.contains("compile_error"), "{out}");
    }

    #[test]
    fn test_adds_the_test_attribute_and_keeps_the_others() {
        let out = expand_str(
            Kind::Test,
            TokenStream::new(),
            quote!(
                #[should_panic]
                async fn boom() {
                    panic!()
                }
            ),
        );
        assert!(
            out.starts_with("# [:: core :: prelude :: v1 :: test] # [should_panic]"),
            "{out}"
        );
        assert!(out.contains("Output = ()"), "{out}");
    }

    #[test]
    fn seeds_runs_the_body_under_sim_check() {
        let out = expand_str(
            Kind::Test,
            quote!(seeds = 500),
            quote!(
                async fn race() {
                    work().await
                }
            ),
        );
        assert!(
            out.starts_with("# [:: core :: prelude :: v1 :: test]"),
            "{out}"
        );
        assert!(
            out.contains(
                ":: magpie :: sim :: check (0 .. 500 , | _seed | async { work () . await })"
            ),
            "{out}"
        );
        assert!(!out.contains("Builder"), "{out}");
    }

    #[test]
    fn crate_option_replaces_the_path() {
        let out = expand_str(
            Kind::Main,
            quote!(crate = "my::rt"),
            quote!(
                async fn main() {}
            ),
        );
        assert!(out.contains("my :: rt :: Builder :: new ()"), "{out}");
        assert!(!out.contains(":: magpie"), "{out}");
    }

    fn error_of(kind: Kind, args: TokenStream, item: TokenStream) -> String {
        let out = expand_str(kind, args, item);
        assert!(out.contains("compile_error"), "{out}");
        out
    }

    #[test]
    fn misuse_is_a_compile_error() {
        let main = quote!(
            async fn main() {}
        );
        let cases: &[(Kind, TokenStream, TokenStream, &str)] = &[
            (
                Kind::Main,
                quote!(),
                quote!(
                    fn main() {}
                ),
                "add `async` before `fn`",
            ),
            (
                Kind::Test,
                quote!(),
                quote!(
                    async fn t(x: u8) {}
                ),
                "with no arguments",
            ),
            (
                Kind::Main,
                quote!(),
                quote!(
                    async fn f<T>() {}
                ),
                "generic",
            ),
            (
                Kind::Main,
                quote!(),
                quote!(
                    struct S;
                ),
                "goes on an `async fn`",
            ),
            (
                Kind::Main,
                quote!(flavor = "x"),
                main.clone(),
                "unknown option `flavor`; the options are `worker_threads`",
            ),
            (
                Kind::Main,
                quote!(worker_threads = "two"),
                main.clone(),
                "must be an integer literal",
            ),
            (
                Kind::Main,
                quote!(worker_threads = 0),
                main.clone(),
                "`worker_threads` must be at least 1",
            ),
            (
                Kind::Main,
                quote!(global_queue_interval = 5_000_000_000),
                main.clone(),
                "must fit in a u32",
            ),
            (
                Kind::Main,
                quote!(spin_before_park_us = 1_000_001),
                main.clone(),
                "`spin_before_park_us` must be at most 1000000 (one second)",
            ),
            (
                Kind::Main,
                quote!(spin_before_park_us = 50ms),
                main.clone(),
                "is a u64 of microseconds: write `spin_before_park_us = 50`",
            ),
            (
                Kind::Main,
                quote!(spin_before_park_us = "50"),
                main.clone(),
                "must be an integer literal of microseconds",
            ),
            (
                Kind::Main,
                quote!(task_cache_bytes = "1MiB"),
                main.clone(),
                "`task_cache_bytes` must be an integer literal of bytes, e.g. `task_cache_bytes = 1048576`",
            ),
            (
                Kind::Main,
                quote!(task_cache_bytes = 65536u32),
                main.clone(),
                "`task_cache_bytes` is a usize of bytes: write `task_cache_bytes = 65536`",
            ),
            (
                Kind::Main,
                quote!(task_cache_bytes = 100_000_000_000_000_000_000),
                main.clone(),
                "`task_cache_bytes` must fit in a usize",
            ),
            (
                Kind::Main,
                quote!(worker_threads = 2u8),
                main.clone(),
                "is a usize",
            ),
            (
                Kind::Main,
                quote!(thread_name = 5),
                main.clone(),
                "must be a string literal",
            ),
            (
                Kind::Main,
                quote!(worker_threads = 1, worker_threads = 2),
                main.clone(),
                "given twice",
            ),
            (
                Kind::Main,
                quote!(worker_threads),
                main.clone(),
                "needs a value",
            ),
            (
                Kind::Main,
                quote!(crate = "not a path"),
                main.clone(),
                "must be a path",
            ),
            (
                Kind::Test,
                quote!(),
                quote!(
                    #[test]
                    async fn t() {}
                ),
                "a second test attribute",
            ),
            (
                Kind::Main,
                quote!(seeds = 10),
                main.clone(),
                "`seeds` is an option of #[magpie::test]",
            ),
            (
                Kind::Test,
                quote!(seeds = 10, worker_threads = 2),
                quote!(
                    async fn t() {}
                ),
                "`worker_threads` configures the multi-threaded runtime, but `seeds`",
            ),
            (
                Kind::Test,
                quote!(seeds = 10),
                quote!(
                    async fn t() -> Result<(), String> {
                        Ok(())
                    }
                ),
                "must return `()`",
            ),
            (
                Kind::Test,
                quote!(seeds = 0),
                quote!(
                    async fn t() {}
                ),
                "`seeds` must be at least 1",
            ),
        ];
        for (kind, args, item, message) in cases {
            let out = error_of(*kind, args.clone(), item.clone());
            assert!(out.contains(message), "expected {message:?} in {out}");
        }
    }

    #[test]
    fn a_misused_fn_is_replaced_by_a_sync_stand_in() {
        let out = error_of(
            Kind::Main,
            quote!(nope = 1),
            quote!(
                async fn main() -> Result<(), String> {
                    Ok(())
                }
            ),
        );
        assert!(
            out.contains("fn main () -> Result < () , String > { :: core :: unreachable ! () }"),
            "{out}"
        );
        assert!(!out.contains("async"), "{out}");
    }
}
