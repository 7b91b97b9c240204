//! The label selector lexer and parser (mirrors
//! `k8s.io/apimachinery/pkg/labels`) and label key/value validation.

use super::requirement::{Operator, Requirement};
use super::validate::validate_label_key;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Token {
    /// A run of characters that are neither whitespace nor special; the
    /// keywords `in` / `notin` are told apart by the parser, because a key or
    /// value may be spelled `in` too.
    Word(String),
    Bang,
    NotEquals,
    Equals,
    DoubleEquals,
    GreaterThan,
    LessThan,
    Comma,
    OpenParen,
    CloseParen,
}

impl Token {
    fn describe(&self) -> String {
        match self {
            Token::Word(word) => format!("'{word}'"),
            Token::Bang => "'!'".into(),
            Token::NotEquals => "'!='".into(),
            Token::Equals => "'='".into(),
            Token::DoubleEquals => "'=='".into(),
            Token::GreaterThan => "'>'".into(),
            Token::LessThan => "'<'".into(),
            Token::Comma => "','".into(),
            Token::OpenParen => "'('".into(),
            Token::CloseParen => "')'".into(),
        }
    }
}

pub(super) fn is_special(c: char) -> bool {
    matches!(c, '=' | '!' | '(' | ')' | ',' | '>' | '<')
}

pub(super) fn lex(input: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut rest = input;
    while let Some(c) = rest.chars().next() {
        if c.is_whitespace() {
            rest = &rest[c.len_utf8()..];
            continue;
        }
        let (token, len) = if rest.starts_with("!=") {
            (Token::NotEquals, 2)
        } else if rest.starts_with("==") {
            (Token::DoubleEquals, 2)
        } else if is_special(c) {
            let token = match c {
                '!' => Token::Bang,
                '=' => Token::Equals,
                '(' => Token::OpenParen,
                ')' => Token::CloseParen,
                ',' => Token::Comma,
                '>' => Token::GreaterThan,
                _ => Token::LessThan,
            };
            (token, 1)
        } else {
            let len = rest
                .find(|c: char| c.is_whitespace() || is_special(c))
                .unwrap_or(rest.len());
            (Token::Word(rest[..len].to_string()), len)
        };
        tokens.push(token);
        rest = &rest[len..];
    }
    tokens
}

pub(super) struct LabelParser<'a> {
    pub(super) tokens: &'a [Token],
    pub(super) position: usize,
}

pub(super) fn describe(token: Option<&Token>) -> String {
    token.map_or_else(|| "end of string".to_string(), Token::describe)
}

impl LabelParser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.position)
    }

    fn next(&mut self) -> Option<&Token> {
        let token = self.tokens.get(self.position);
        self.position += 1;
        token
    }

    pub(super) fn parse_selector(&mut self) -> Result<Vec<Requirement>, String> {
        let mut requirements = Vec::new();
        if self.peek().is_none() {
            return Ok(requirements);
        }
        loop {
            requirements.push(self.parse_requirement()?);
            match self.next() {
                None => return Ok(requirements),
                Some(Token::Comma) => match self.peek() {
                    Some(Token::Word(_) | Token::Bang) => {}
                    other => {
                        return Err(format!(
                            "expected identifier after ',', found {}",
                            describe(other)
                        ));
                    }
                },
                other => {
                    return Err(format!(
                        "expected ',' or end of string, found {}",
                        describe(other)
                    ));
                }
            }
        }
    }

    fn parse_requirement(&mut self) -> Result<Requirement, String> {
        let negated = self.peek() == Some(&Token::Bang);
        if negated {
            self.position += 1;
        }
        let key = match self.next() {
            Some(Token::Word(word)) => word.clone(),
            other => return Err(format!("expected identifier, found {}", describe(other))),
        };
        validate_label_key(&key)?;
        let at_end_of_term = matches!(self.peek(), None | Some(Token::Comma));
        if negated {
            if !at_end_of_term {
                return Err(format!(
                    "expected ',' or end of string after '!{key}', found {}",
                    describe(self.peek())
                ));
            }
            return Requirement::new(key, Operator::DoesNotExist, []);
        }
        if at_end_of_term {
            return Requirement::new(key, Operator::Exists, []);
        }
        let operator = match self.next() {
            Some(Token::Equals) => Operator::Equals,
            Some(Token::DoubleEquals) => Operator::DoubleEquals,
            Some(Token::NotEquals) => Operator::NotEquals,
            Some(Token::GreaterThan) => Operator::GreaterThan,
            Some(Token::LessThan) => Operator::LessThan,
            Some(Token::Word(word)) if word == "in" => Operator::In,
            Some(Token::Word(word)) if word == "notin" => Operator::NotIn,
            other => {
                return Err(format!(
                    "expected one of '=', '==', '!=', 'in', 'notin', '>', '<' after key {key:?}, found {}",
                    describe(other)
                ));
            }
        };
        let values = match operator {
            Operator::In | Operator::NotIn => self.parse_value_set()?,
            _ => vec![self.parse_single_value()?],
        };
        Requirement::new(key, operator, values)
    }

    /// `key=` with nothing after it means the empty value, as in Kubernetes.
    fn parse_single_value(&mut self) -> Result<String, String> {
        match self.peek() {
            None | Some(Token::Comma) => Ok(String::new()),
            Some(Token::Word(word)) => {
                let word = word.clone();
                self.position += 1;
                Ok(word)
            }
            other => Err(format!("expected a value, found {}", describe(other))),
        }
    }

    /// `( v1 , v2 )`; empty slots (`()`, `(,a)`, `(a,)`, `(a,,b)`) stand for
    /// the empty value, as in Kubernetes.
    fn parse_value_set(&mut self) -> Result<Vec<String>, String> {
        match self.next() {
            Some(Token::OpenParen) => {}
            other => return Err(format!("expected '(', found {}", describe(other))),
        }
        let mut values = Vec::new();
        let mut expecting_value = true;
        loop {
            match self.next() {
                Some(Token::CloseParen) => {
                    if expecting_value {
                        values.push(String::new());
                    }
                    return Ok(values);
                }
                Some(Token::Comma) => {
                    if expecting_value {
                        values.push(String::new());
                    }
                    expecting_value = true;
                }
                Some(Token::Word(word)) if expecting_value => {
                    values.push(word.clone());
                    expecting_value = false;
                }
                None => return Err("expected ')'".to_string()),
                Some(other) => {
                    let expected = if expecting_value {
                        "a value, ',' or ')'"
                    } else {
                        "',' or ')'"
                    };
                    return Err(format!("expected {expected}, found {}", other.describe()));
                }
            }
        }
    }
}
